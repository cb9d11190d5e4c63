//! Seed the fuzz corpora from the project's captures: each capture file as
//! is for `capture_file`, its frames in the `frames` input format, and each
//! of its frames alone, behind the same link-type byte, for `poke_reply`.
//!
//! cargo run --release --bin make_seeds   (from fuzz/)
//!
//! The seeds go to seeds/<target>/ (not committed); `cargo fuzz cmin` then
//! merges what adds coverage into corpus/<target>/.

use std::collections::BTreeSet;
use std::path::Path;

use pcap::Capture;

fn main() {
    let captures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../captures");
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    for target in ["frames", "capture_file", "poke_reply"] {
        std::fs::create_dir_all(seeds.join(target)).unwrap();
    }
    let mut entries: Vec<_> = std::fs::read_dir(&captures)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !(name.ends_with(".pcap") || name.ends_with(".pcapng")) {
            continue;
        }
        std::fs::copy(&path, seeds.join("capture_file").join(&name)).unwrap();
        let mut cap = Capture::from_file(&path).unwrap();
        // The index into the targets' LINKS table.
        let pick: u8 = match cap.get_datalink().0 {
            1 => 0,
            0 | 108 => 1,
            12 | 14 | 101 => 2,
            113 => 3,
            _ => 4,
        };
        let mut seed = vec![pick];
        // One poke_reply seed per distinct frame: most frames of a capture
        // repeat the same headers with other numbers.
        let mut frames = BTreeSet::new();
        let mut last = None;
        while let Ok(p) = cap.next_packet() {
            let t = p.header.ts.tv_sec * 1000 + p.header.ts.tv_usec / 1000;
            let step = last.map_or(0, |l: i64| (t - l).clamp(0, 255)) as u8;
            last = Some(t);
            seed.extend_from_slice(&(p.data.len() as u16).to_le_bytes());
            seed.push(step);
            seed.extend_from_slice(p.data);
            frames.insert(p.data.to_vec());
        }
        std::fs::write(seeds.join("frames").join(format!("{name}.frames")), seed).unwrap();
        for (i, frame) in frames.iter().enumerate() {
            let mut one = vec![pick];
            one.extend_from_slice(frame);
            std::fs::write(seeds.join("poke_reply").join(format!("{name}.{i}")), one).unwrap();
        }
    }
}
