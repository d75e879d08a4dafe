//! reset
