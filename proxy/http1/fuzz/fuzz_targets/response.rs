//! Any bytes from a provider: the response-head and body decoders must return (a response, a
//! typed error, or a wish for more) without panicking or hanging, read the bytes the same
//! however they are cut into reads and whether driven alone or by a connection, and never
//! yield more body than the framing allows. The checks live in `gatehouse_http1::fuzzing`,
//! which the stable test suite runs too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    gatehouse_http1::fuzzing::response(data);
});
