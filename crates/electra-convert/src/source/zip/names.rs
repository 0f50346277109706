//! Entry names: decoding and the plain-relative-path rule.

/// The upper half of code page 437, the encoding of zip names without the UTF-8 flag.
const CP437_HIGH: &str = "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u{a0}";

/// Decode a raw entry name.
///
/// Valid UTF-8 is taken as UTF-8 whether or not the name carries the UTF-8 flag (bit 11):
/// Info-ZIP on Unix and many other writers store UTF-8 names without it. Otherwise a name with
/// the flag is refused, and one without it is code page 437, as the format specifies. Bytes
/// below 0x80 are ASCII either way, so `/`, `\`, `.` and `:` mean the same in both decodings.
pub fn decode_name(raw: &[u8], utf8_flag: bool) -> Result<String, &'static str> {
    if let Ok(s) = std::str::from_utf8(raw) {
        return Ok(s.to_owned());
    }
    if utf8_flag {
        return Err("an entry name is flagged as UTF-8 but is not valid UTF-8");
    }
    Ok(raw
        .iter()
        .map(|&b| {
            if b < 0x80 {
                char::from(b)
            } else {
                CP437_HIGH
                    .chars()
                    .nth(usize::from(b - 0x80))
                    .unwrap_or('\u{fffd}')
            }
        })
        .collect())
}

/// Refuse anything but a plain relative path of non-empty, non-`.`/`..` components separated
/// by `/` (a directory entry ends with one more `/`). Such a name can never reach outside the
/// archive's own tree, whichever tool unzips it, and matches entries one way only.
pub fn check_name(name: &str, is_dir: bool) -> Result<(), &'static str> {
    let body = if is_dir {
        name.strip_suffix('/').unwrap_or(name)
    } else {
        name
    };
    if body.is_empty() {
        return Err("empty name");
    }
    if name.contains('\0') {
        return Err("contains a NUL character");
    }
    if name.contains('\\') {
        return Err("contains a backslash, a path separator on Windows");
    }
    if name.starts_with('/') {
        return Err("an absolute path");
    }
    let b = name.as_bytes();
    if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        return Err("starts with a drive letter");
    }
    for component in body.split('/') {
        match component {
            "" => return Err("an empty path component (`//`)"),
            "." => return Err("a `.` path component"),
            ".." => return Err("a `..` path component (path traversal)"),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cp437_table_is_complete() {
        assert_eq!(CP437_HIGH.chars().count(), 128);
        assert_eq!(decode_name(&[0x80, b'a', 0xff], false).unwrap(), "Ça\u{a0}");
        assert_eq!(decode_name("é".as_bytes(), false).unwrap(), "é");
        assert!(decode_name(&[0x80], true).is_err());
    }

    #[test]
    fn only_plain_relative_paths_pass() {
        for ok in [
            "a",
            "a/b.index",
            "electra_small/",
            "a/.hidden",
            "a..b",
            "x/y/z",
        ] {
            assert!(check_name(ok, ok.ends_with('/')).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/",
            "../evil.index",
            "a/../../b",
            "a/..",
            "/etc/passwd",
            "C:/x",
            "c:x",
            "a\\b",
            "..\\evil",
            "a//b",
            "./a",
            "a/./b",
            "a\0b",
        ] {
            assert!(check_name(bad, bad.ends_with('/')).is_err(), "{bad:?}");
        }
    }
}
