//! Threat-hunting playbooks (see issue 5).
