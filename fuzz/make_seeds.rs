//! Seed the fuzz corpora from the project's captures: each capture file as
//! is for `capture_file`, and its frames in the `frames` input format.
//!
//! cargo run --release --bin make_seeds   (from fuzz/)

use std::path::Path;

use pcap::Capture;

fn main() {
    let captures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../captures");
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for target in ["frames", "capture_file"] {
        std::fs::create_dir_all(corpus.join(target)).unwrap();
    }
    let mut entries: Vec<_> = std::fs::read_dir(&captures).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !(name.ends_with(".pcap") || name.ends_with(".pcapng")) {
            continue;
        }
        std::fs::copy(&path, corpus.join("capture_file").join(&name)).unwrap();
        let mut cap = Capture::from_file(&path).unwrap();
        let pick: u8 = match cap.get_datalink().0 {
            1 => 0,
            0 | 108 => 1,
            12 | 14 | 101 => 2,
            113 => 3,
            _ => 4,
        };
        let mut seed = vec![pick];
        let mut last = None;
        while let Ok(p) = cap.next_packet() {
            let t = p.header.ts.tv_sec * 1000 + p.header.ts.tv_usec / 1000;
            let step = last.map_or(0, |l: i64| (t - l).clamp(0, 255)) as u8;
            last = Some(t);
            seed.extend_from_slice(&(p.data.len() as u16).to_le_bytes());
            seed.push(step);
            seed.extend_from_slice(p.data);
        }
        std::fs::write(corpus.join("frames").join(format!("{name}.frames")), seed).unwrap();
    }
}
