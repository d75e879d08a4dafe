//! Bytes → the control request parser, then the validation each request goes through; a request
//! that parses is sent again as a client of the same release would and reads back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcpreset::proto::{parse_request, Envelope, Request, VERSION};

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let request = match parse_request(line) {
        Ok(request) => request,
        Err(message) => return assert!(!message.is_empty()),
    };
    match &request {
        Request::Add(add) => drop(add.to_spec()),
        Request::Cancel(key) => drop(key.to_key()),
        _ => {}
    }
    let again = serde_json::to_string(&Envelope {
        v: VERSION,
        request: request.clone(),
    })
    .unwrap();
    assert_eq!(parse_request(&again).as_ref(), Ok(&request), "{again}");
});
