//! Parsing `/proc/PID/maps`.

/// One line of `/proc/PID/maps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    pub readable: bool,
    pub executable: bool,
    /// Offset in the mapped file.
    pub offset: u64,
    pub inode: u64,
    /// The path as the kernel prints it, without a ` (deleted)` suffix.
    pub path: Option<String>,
    /// The file was deleted or replaced after it was mapped.
    pub deleted: bool,
}

/// Parses the text of `/proc/PID/maps`; malformed lines are skipped.
pub fn parse_maps(text: &str) -> Vec<Mapping> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Mapping> {
    // Fields are separated by single spaces, except that the path column is
    // padded; a path itself may contain spaces.
    let mut rest = line;
    let mut next_field = || {
        let trimmed = rest.trim_start();
        let end = trimmed.find(' ').unwrap_or(trimmed.len());
        let (field, tail) = trimmed.split_at(end);
        rest = tail;
        field
    };
    let range = next_field();
    let perms = next_field();
    let offset = next_field();
    let _device = next_field();
    let inode = next_field();
    let path = rest.trim_start();

    let (start, end) = range.split_once('-')?;
    let perms = perms.as_bytes();
    if perms.len() < 4 {
        return None;
    }
    let (path, deleted) = match path.strip_suffix(" (deleted)") {
        Some(stripped) => (stripped, true),
        None => (path, false),
    };
    Some(Mapping {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        readable: perms[0] == b'r',
        executable: perms[2] == b'x',
        offset: u64::from_str_radix(offset, 16).ok()?,
        inode: inode.parse().ok()?,
        path: (!path.is_empty()).then(|| path.to_string()),
        deleted,
    })
}

/// Tells whether a file name is a Ruby shared library, in any of the forms
/// distributions use: `libruby.so.3.1`, `libruby-3.1.so.3.1.2`,
/// `libruby.so`, `libruby-static.so`.
pub fn is_libruby(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.starts_with("libruby") && (name.ends_with(".so") || name.contains(".so."))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
55d0c0a00000-55d0c0a01000 r--p 00000000 08:01 1312 /usr/bin/ruby3.1
7f2a1c000000-7f2a1c0c8000 r--p 00000000 08:01 2001 /usr/lib/x86_64-linux-gnu/libruby-3.1.so.3.1.2
7f2a1c0c8000-7f2a1c300000 r-xp 000c8000 08:01 2001 /usr/lib/x86_64-linux-gnu/libruby-3.1.so.3.1.2
7f2a1d000000-7f2a1d001000 rw-p 00000000 00:00 0 
7f2a1e000000-7f2a1e001000 r-xp 00001000 08:01 77 /app/my lib/x.so (deleted)
7ffd5e000000-7ffd5e021000 rw-p 00000000 00:00 0                          [stack]
";

    #[test]
    fn parses_lines() {
        let maps = parse_maps(SAMPLE);
        assert_eq!(maps.len(), 6);
        assert_eq!(maps[1].start, 0x7f2a1c000000);
        assert_eq!(maps[2].offset, 0xc8000);
        assert!(maps[2].executable);
        assert!(!maps[1].executable);
        assert_eq!(maps[3].path, None);
        assert_eq!(maps[5].path.as_deref(), Some("[stack]"));
    }

    #[test]
    fn keeps_spaces_and_marks_deleted() {
        let maps = parse_maps(SAMPLE);
        assert_eq!(maps[4].path.as_deref(), Some("/app/my lib/x.so"));
        assert!(maps[4].deleted);
    }

    #[test]
    fn recognises_libruby_names() {
        assert!(is_libruby("/usr/lib/libruby.so.3.1"));
        assert!(is_libruby("/usr/lib/x86_64-linux-gnu/libruby-3.1.so.3.1.2"));
        assert!(is_libruby("/usr/local/lib/libruby.so"));
        assert!(!is_libruby("/usr/bin/ruby"));
        assert!(!is_libruby("/usr/lib/librubyfoo.a"));
    }
}
