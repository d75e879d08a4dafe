//! Each rotation real sensors do, on real files: every line is handed on once, none is lost.

use std::io::Write;

use super::*;

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// The lines handed on, as `name:line:text`, with the file name only.
fn lines(polled: &Polled) -> Vec<String> {
    let mut out = Vec::new();
    for c in &polled.chunks {
        let name = Path::new(&c.name).file_name().unwrap().to_string_lossy();
        let text = String::from_utf8_lossy(&c.bytes);
        for (i, l) in text.split_terminator('\n').enumerate() {
            out.push(format!("{name}:{}:{l}", c.first_line + i as u64));
        }
    }
    out
}

fn setup() -> (tempfile::TempDir, PathBuf, Tails) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eve.json");
    let mut tails = Tails::default();
    tails.set_names(std::slice::from_ref(&path));
    (dir, path, tails)
}

#[test]
fn reads_only_new_bytes_and_waits_for_a_partial_lines_break() {
    let (_dir, path, mut tails) = setup();
    let t = Instant::now();
    append(&path, "a\nb\nc");
    assert_eq!(lines(&tails.poll(t)), ["eve.json:1:a", "eve.json:2:b"]);
    assert!(lines(&tails.poll(t)).is_empty());
    append(&path, "c\n");
    assert_eq!(lines(&tails.poll(t)), ["eve.json:3:cc"]);
    append(&path, "d\n");
    assert_eq!(lines(&tails.poll(t)), ["eve.json:4:d"]);
    let id = tails.names()[0].id.unwrap();
    assert_eq!(tails.position(id), Some((9, 4)));
}

#[test]
fn a_file_missing_at_start_is_read_from_its_start_when_it_appears() {
    let (_dir, path, mut tails) = setup();
    let t = Instant::now();
    let first = tails.poll(t);
    assert!(first.chunks.is_empty());
    assert!(
        first.notes[0].contains("does not exist (yet)"),
        "{:?}",
        first.notes
    );
    // Said once, not at every poll.
    assert!(tails.poll(t).notes.is_empty());
    append(&path, "a\nb\n");
    assert_eq!(lines(&tails.poll(t)), ["eve.json:1:a", "eve.json:2:b"]);
    assert_eq!(tails.names()[0].trouble, None);
}

#[test]
fn rename_and_create_reads_the_old_file_to_its_end_then_the_new_one() {
    let (dir, path, mut tails) = setup();
    let t = Instant::now();
    append(&path, "a\n");
    assert_eq!(lines(&tails.poll(t)), ["eve.json:1:a"]);
    let rotated = dir.path().join("eve.json.1");
    std::fs::rename(&path, &rotated).unwrap();
    // The writer appends to the renamed file (a partial line too) until it reopens.
    append(&rotated, "b\nc");
    append(&path, "d\n");
    let polled = tails.poll(t);
    assert_eq!(
        lines(&polled),
        ["eve.json (rotated away):2:b", "eve.json:1:d"]
    );
    assert!(polled.notes[0].contains("rotated"), "{:?}", polled.notes);
    append(&rotated, "c\n");
    append(&path, "e\n");
    assert_eq!(
        lines(&tails.poll(t)),
        ["eve.json (rotated away):3:cc", "eve.json:2:e"]
    );
    // Closed once it has not grown for the grace period; nothing is read twice.
    assert!(lines(&tails.poll(t + DRAIN_GRACE)).is_empty());
    assert_eq!(tails.open.len(), 1);
    assert_eq!(tails.names()[0].rotations, 1);
}

#[test]
fn copytruncate_reads_the_truncated_file_again_from_its_start() {
    let (dir, path, mut tails) = setup();
    let t = Instant::now();
    append(&path, "a\nb\n");
    assert_eq!(lines(&tails.poll(t)), ["eve.json:1:a", "eve.json:2:b"]);
    std::fs::copy(&path, dir.path().join("eve.json.1")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&path, "c\n");
    let polled = tails.poll(t);
    assert_eq!(lines(&polled), ["eve.json:1:c"]);
    assert!(
        polled.notes[0].contains("shrank from 4 to 2 bytes"),
        "{:?}",
        polled.notes
    );
    assert_eq!(tails.names()[0].rotations, 1);
}

#[test]
fn deleted_and_recreated_reads_the_deleted_file_to_its_end() {
    let (_dir, path, mut tails) = setup();
    let t = Instant::now();
    append(&path, "a\n");
    let mut old = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    assert_eq!(lines(&tails.poll(t)), ["eve.json:1:a"]);
    std::fs::remove_file(&path).unwrap();
    old.write_all(b"b\n").unwrap();
    let polled = tails.poll(t);
    assert_eq!(lines(&polled), ["eve.json (rotated away):2:b"]);
    assert!(
        polled.notes[0].contains("does not exist"),
        "{:?}",
        polled.notes
    );
    // The writer has not closed it yet, and writes a last partial line.
    old.write_all(b"c").unwrap();
    append(&path, "d\n");
    let polled = tails.poll(t + DRAIN_GRACE);
    assert_eq!(lines(&polled), ["eve.json:1:d"]);
    let polled = tails.poll(t + DRAIN_GRACE * 3);
    assert_eq!(lines(&polled), ["eve.json (rotated away):3:c"]);
    assert!(
        polled.notes[0].contains("no line break"),
        "{:?}",
        polled.notes
    );
}

#[test]
fn a_file_replaced_by_a_directory_is_reported_and_followed_again_after() {
    let (_dir, path, mut tails) = setup();
    let t = Instant::now();
    append(&path, "a\n");
    assert_eq!(lines(&tails.poll(t)), ["eve.json:1:a"]);
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    let polled = tails.poll(t);
    assert!(
        polled.notes[0].contains("is a directory"),
        "{:?}",
        polled.notes
    );
    std::fs::remove_dir(&path).unwrap();
    append(&path, "b\n");
    assert_eq!(lines(&tails.poll(t)), ["eve.json:1:b"]);
}

#[test]
fn a_rename_between_followed_names_keeps_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("eve.json");
    append(&live, "a\n");
    let mut tails = Tails::default();
    tails.set_names(&expand(dir.path(), &["eve.json*".into()]));
    let t = Instant::now();
    assert_eq!(lines(&tails.poll(t)), ["eve.json:1:a"]);
    std::fs::rename(&live, dir.path().join("eve.json.1")).unwrap();
    append(&live, "b\n");
    tails.set_names(&expand(dir.path(), &["eve.json*".into()]));
    assert_eq!(lines(&tails.poll(t)), ["eve.json:1:b"]);
}
