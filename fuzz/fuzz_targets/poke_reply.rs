//! `poke`'s reply parser: whatever the capture hands `poke` while it waits
//! for the peer's answer, read as a TCP segment (with TSecr and signature
//! options) or an ICMP error quoting one of our segments.
//!
//! Input: one byte choosing the link type, as in `frames`, then one frame.
#![no_main]

use kaprobe::poke::parse_reply;
use kaprobe::wire::LinkType;
use libfuzzer_sys::fuzz_target;

const LINKS: [LinkType; 5] = LinkType::ALL;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, frame)) = data.split_first() else {
        return;
    };
    let link = LINKS[usize::from(pick) % LINKS.len()];
    // The error's message is what a user would see: building it must not panic either.
    if let Err(e) = std::hint::black_box(parse_reply(link, frame)) {
        let _ = e.to_string();
    }
});
