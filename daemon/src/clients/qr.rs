//! QR codes of client configs, for the WireGuard phone apps: ANSI half blocks
//! for a terminal, SVG for the web pages, and a 1-bit PNG written here (stored
//! deflate, a few dozen lines) rather than pulling in an image crate.

use qrcodegen::{QrCode, QrCodeEcc};

/// Modules of white around the code (the standard asks for 4).
const QUIET: i32 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ansi,
    Svg,
    Png,
}

impl Format {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "ansi" => Ok(Self::Ansi),
            "svg" => Ok(Self::Svg),
            "png" => Ok(Self::Png),
            other => Err(format!("'{other}' is not one of: ansi, svg, png")),
        }
    }
}

pub fn encode(text: &str) -> Result<QrCode, String> {
    QrCode::encode_text(text, QrCodeEcc::Low).map_err(|_| "too long for a QR code".to_string())
}

pub fn render(text: &str, format: Format) -> Result<Vec<u8>, String> {
    let qr = encode(text)?;
    Ok(match format {
        Format::Ansi => ansi(&qr).into_bytes(),
        Format::Svg => svg(&qr).into_bytes(),
        Format::Png => png(&qr, 6),
    })
}

/// Is the module at (x, y) dark? Outside the code (the quiet zone) is light.
fn dark(qr: &QrCode, x: i32, y: i32) -> bool {
    let n = qr.size();
    (0..n).contains(&x) && (0..n).contains(&y) && qr.get_module(x, y)
}

/// Two module rows per text line (upper/lower half blocks), black on white.
pub fn ansi(qr: &QrCode) -> String {
    let n = qr.size();
    let mut out = String::new();
    let mut y = -QUIET;
    while y < n + QUIET {
        out.push_str("\x1b[30;47m");
        for x in -QUIET..n + QUIET {
            out.push(match (dark(qr, x, y), dark(qr, x, y + 1)) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        out.push_str("\x1b[0m\n");
        y += 2;
    }
    out
}

/// One path of horizontal runs: small and crisp at any size.
pub fn svg(qr: &QrCode) -> String {
    let n = qr.size();
    let total = n + 2 * QUIET;
    let mut path = String::new();
    for y in 0..n {
        let mut x = 0;
        while x < n {
            if qr.get_module(x, y) {
                let start = x;
                while x < n && qr.get_module(x, y) {
                    x += 1;
                }
                path.push_str(&format!(
                    "M{} {}h{}v1h-{}z",
                    start + QUIET,
                    y + QUIET,
                    x - start,
                    x - start
                ));
            } else {
                x += 1;
            }
        }
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {total} {total}\" \
         shape-rendering=\"crispEdges\"><rect width=\"{total}\" height=\"{total}\" fill=\"#fff\"/>\
         <path fill=\"#000\" d=\"{path}\"/></svg>\n"
    )
}

/// A grayscale 1-bit PNG, `scale` pixels per module.
pub fn png(qr: &QrCode, scale: u32) -> Vec<u8> {
    let modules = (qr.size() + 2 * QUIET) as u32;
    let side = modules * scale;
    let row_bytes = side.div_ceil(8) as usize;
    let mut raw = Vec::with_capacity((row_bytes + 1) * side as usize);
    for py in 0..side {
        raw.push(0); // filter: none
        let my = (py / scale) as i32 - QUIET;
        let mut byte = 0u8;
        for px in 0..side {
            let mx = (px / scale) as i32 - QUIET;
            // Bit 1 is white in grayscale.
            byte = (byte << 1) | u8::from(!dark(qr, mx, my));
            if px % 8 == 7 {
                raw.push(byte);
                byte = 0;
            }
        }
        if !side.is_multiple_of(8) {
            // Pad the last byte with white.
            let pad = 8 - side % 8;
            raw.push((byte << pad) | ((1u8 << pad) - 1));
        }
    }
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&[1, 0, 0, 0, 0]); // depth 1, grayscale, deflate, no filter, no interlace
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &zlib_stored(&raw));
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// zlib with stored (uncompressed) deflate blocks: valid everywhere, no encoder.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let mut blocks = data.chunks(65535).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        out.push(u8::from(blocks.peek().is_none()));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + x as u32) % 65521;
        b = (b + a) % 65521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &x in data {
        crc ^= x as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_and_adler_known_values() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        let z = zlib_stored(b"Wikipedia");
        assert_eq!(&z[z.len() - 4..], &0x11E6_0398u32.to_be_bytes());
    }

    #[test]
    fn formats_agree_on_the_modules() {
        let text = "[Interface]\nPrivateKey = x\n";
        let qr = encode(text).unwrap();
        let n = qr.size();
        // SVG: every dark module is covered by exactly one run.
        let s = svg(&qr);
        let runs: i32 = s
            .split('M')
            .skip(1)
            .map(|r| {
                r.split('h')
                    .nth(1)
                    .unwrap()
                    .split('v')
                    .next()
                    .unwrap()
                    .parse::<i32>()
                    .unwrap()
            })
            .sum();
        let dark_count = (0..n)
            .flat_map(|y| (0..n).map(move |x| (x, y)))
            .filter(|&(x, y)| qr.get_module(x, y))
            .count() as i32;
        assert_eq!(runs, dark_count);
        // ANSI: (n + 8) columns, ceil((n + 8) / 2) lines.
        let a = ansi(&qr);
        assert_eq!(a.lines().count() as i32, (n + 2 * QUIET + 1) / 2);
        // PNG: signature, IHDR size, and the top-left finder pixel is black.
        let p = png(&qr, 2);
        assert_eq!(&p[..8], b"\x89PNG\r\n\x1a\n");
        let side = u32::from_be_bytes(p[16..20].try_into().unwrap());
        assert_eq!(side as i32, (n + 2 * QUIET) * 2);
        assert!(Format::parse("jpeg").is_err());
    }
}
