//! The API's request path on any bytes: reading the head, the body limit of the
//! route it names, the checks made before the body (origin, If-Match) and the
//! query string never panic, never read past the head's own bytes, and agree
//! with themselves when the head is read again.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The file itself, not the crate: it depends on nothing else, so this target
// keeps building wherever the API module ends up.
#[path = "../../src/api/http.rs"]
#[allow(dead_code)]
mod http;

fuzz_target!(|data: &[u8]| {
    let head = match http::parse_head(data) {
        Ok(Some(h)) => h,
        Ok(None) => {
            assert!(data.len() < http::MAX_HEAD, "a full buffer always decides");
            return;
        }
        Err(e) => {
            assert!(matches!(e.status(), 400 | 411 | 431));
            return;
        }
    };
    assert!(head.len <= data.len().min(http::MAX_HEAD));
    assert!(head.headers.len() <= http::MAX_HEADERS);
    // The head alone reads the same; what follows it (a body) changes nothing.
    let again = http::parse_head(&data[..head.len]).unwrap().unwrap();
    assert_eq!((again.len, again.content_length), (head.len, head.content_length));
    assert_eq!(again.method, head.method);
    let segs = http::segments(head.path());
    let limit = http::body_limit(&head.method, &segs);
    assert!(limit <= http::MAX_BODY);
    let _ = http::is_public(&head.method, &segs);
    let _ = http::same_origin(head.header("Origin"), head.header("Referer"), head.header("Host"));
    let tag = http::etag_of(&data[head.len..]);
    if let Some(im) = head.header("If-Match") {
        let _ = http::if_match_allows(im, &tag);
    }
    assert!(http::if_match_allows(&tag, &tag));
    for (k, v) in http::parse_query(head.query()) {
        assert!(k.len() <= head.target.len() * 3 && v.len() <= head.target.len() * 3);
    }
    let out = http::response_head(413, &[("X", head.target.as_str())], limit);
    assert!(out.ends_with("\r\n\r\n") && out.matches("\r\n\r\n").count() == 1);
});
