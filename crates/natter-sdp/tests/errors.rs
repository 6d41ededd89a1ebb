//! Malformed descriptions give typed errors that name the line, its kind
//! and what is wrong, never a panic.

use natter_sdp::*;

const HEAD: &str = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n";

fn err(text: &str) -> ParseError {
    match SessionDescription::parse(text) {
        Ok(sdp) => panic!("{text:?} should not parse, got {sdp:?}"),
        Err(e) => e,
    }
}

/// The error for `lines` after a valid session header (lines 1-4).
fn err_after_head(lines: &str) -> ParseError {
    err(&format!("{HEAD}{lines}"))
}

fn line_error(line: usize, kind: LineKind, error: impl Into<LineError>) -> ParseError {
    ParseError::Line {
        line,
        kind,
        error: error.into(),
    }
}

fn attribute(name: &str) -> LineKind {
    LineKind::Attribute(name.into())
}

fn invalid(field: &'static str, value: &str) -> ValueError {
    ValueError::Invalid {
        field,
        value: value.into(),
    }
}

#[test]
fn empty_input_has_no_version() {
    for text in ["", "\r\n", "\n\n\n"] {
        let e = err(text);
        assert_eq!(e, ParseError::Missing(LineKind::Version));
        assert_eq!(
            e.to_string(),
            "no v= line: RFC 8866 §5 requires one in every session description"
        );
    }
}

#[test]
fn attributes_before_version() {
    let e = err("a=group:BUNDLE 0\r\nv=0\r\n");
    assert_eq!(e, line_error(1, attribute("group"), LineError::BeforeVersion));
    assert_eq!(
        e.to_string(),
        "line 1 (a=group): comes before v=: a description starts with v= (RFC 8866 §5.1)"
    );
    assert_eq!(
        err("o=- 1 1 IN IP4 0.0.0.0\nv=0\n"),
        line_error(1, LineKind::Origin, LineError::BeforeVersion)
    );
}

#[test]
fn only_version_zero() {
    let e = err("v=1\r\n");
    assert_eq!(
        e,
        line_error(1, LineKind::Version, invalid("protocol version (only 0 exists)", "1"))
    );
    assert_eq!(
        e.to_string(),
        "line 1 (v=): invalid protocol version (only 0 exists): `1`"
    );
}

#[test]
fn missing_required_lines() {
    assert_eq!(err("v=0\r\ns=-\r\nt=0 0\r\n"), ParseError::Missing(LineKind::Origin));
    assert_eq!(
        err("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nt=0 0\r\n"),
        ParseError::Missing(LineKind::SessionName)
    );
    let e = err("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nm=audio 9 RTP/AVP 0\r\n");
    assert_eq!(e, ParseError::Missing(LineKind::Timing));
    assert_eq!(
        e.to_string(),
        "no t= line: RFC 8866 §5 requires one in every session description"
    );
}

#[test]
fn malformed_lines() {
    let e = err_after_head("hello\r\n");
    assert_eq!(e, line_error(5, LineKind::Malformed, LineError::NotTypeValue));
    assert_eq!(
        e.to_string(),
        "line 5 (malformed line): expected `<type>=<value>` with a one-letter type"
    );
    assert_eq!(
        err_after_head(" a=mid:0\r\n"),
        line_error(5, LineKind::Malformed, LineError::NotTypeValue)
    );
    assert_eq!(
        err_after_head("ab=1\r\n"),
        line_error(5, LineKind::Malformed, LineError::NotTypeValue)
    );
    assert_eq!(
        err_after_head("é=1\r\n"),
        line_error(5, LineKind::Malformed, LineError::NotTypeValue)
    );
    assert_eq!(
        err("x\r\n"),
        line_error(1, LineKind::Malformed, LineError::NotTypeValue)
    );
}

#[test]
fn line_numbers_count_blank_lines() {
    let e = err("v=0\n\no=- 1 1 IN IP4 0.0.0.0\n\n\ns=-\nt=0 x\n");
    assert_eq!(e, line_error(7, LineKind::Timing, invalid("stop time", "x")));
    assert_eq!(e.to_string(), "line 7 (t=): invalid stop time: `x`");
}

#[test]
fn bad_media_lines() {
    let e = err_after_head("m=audio\r\n");
    assert_eq!(e, line_error(5, LineKind::Media, ValueError::Missing("port")));
    assert_eq!(e.to_string(), "line 5 (m=): port is missing");

    let e = err_after_head("m=audio nine RTP/AVP 0\r\n");
    assert_eq!(e, line_error(5, LineKind::Media, invalid("port", "nine")));
    assert_eq!(e.to_string(), "line 5 (m=): invalid port: `nine`");

    assert_eq!(
        err_after_head("m=audio 70000 RTP/AVP 0\r\n"),
        line_error(5, LineKind::Media, invalid("port", "70000"))
    );
    assert_eq!(
        err_after_head("m=audio -9 RTP/AVP 0\r\n"),
        line_error(5, LineKind::Media, invalid("port", "-9"))
    );
    assert_eq!(
        err_after_head("m=audio +9 RTP/AVP 0\r\n"),
        line_error(5, LineKind::Media, invalid("port", "+9"))
    );
    assert_eq!(
        err_after_head("m=audio 9/x RTP/AVP 0\r\n"),
        line_error(5, LineKind::Media, invalid("number of ports", "x"))
    );
    assert_eq!(
        err_after_head("m=audio 9\r\n"),
        line_error(5, LineKind::Media, ValueError::Missing("protocol"))
    );
    assert_eq!(
        err_after_head("m=audio 9 RTP//AVP 0\r\n"),
        line_error(5, LineKind::Media, invalid("protocol", ""))
    );
    assert_eq!(
        err_after_head("m=audio 9 RTP/AVP 0 (1)\r\n"),
        line_error(5, LineKind::Media, invalid("format", "(1)"))
    );
}

#[test]
fn huge_numbers() {
    let e = err("v=0\r\no=- 99999999999999999999999 1 IN IP4 0.0.0.0\r\n");
    assert_eq!(
        e,
        line_error(2, LineKind::Origin, invalid("session id", "99999999999999999999999"))
    );
    assert_eq!(
        err_after_head("b=AS:18446744073709551616\r\n"),
        line_error(5, LineKind::Bandwidth, invalid("bandwidth", "18446744073709551616"))
    );
    let e = err_after_head("m=video 9 RTP/AVP 96\r\na=ssrc:4294967296 cname:x\r\n");
    assert_eq!(e, line_error(6, attribute("ssrc"), invalid("SSRC", "4294967296")));
    let e = err_after_head(
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=max-message-size:99999999999999999999\r\n",
    );
    assert_eq!(
        e,
        line_error(
            6,
            attribute("max-message-size"),
            invalid("max message size", "99999999999999999999")
        )
    );
}

#[test]
fn duplicates_and_misplaced_lines() {
    let e = err("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\ns=again\r\nt=0 0\r\n");
    assert_eq!(e, line_error(4, LineKind::SessionName, LineError::Duplicate));
    assert_eq!(
        e.to_string(),
        "line 4 (s=): appears more than once in its section (RFC 8866 §5)"
    );
    assert_eq!(
        err_after_head("v=0\r\n"),
        line_error(5, LineKind::Version, LineError::Duplicate)
    );
    assert_eq!(
        err_after_head("c=IN IP4 0.0.0.0\r\nc=IN IP4 0.0.0.0\r\n"),
        line_error(6, LineKind::Connection, LineError::Duplicate)
    );
    assert_eq!(
        err_after_head("m=audio 9 RTP/AVP 0\r\ni=a\r\ni=b\r\n"),
        line_error(7, LineKind::Information, LineError::Duplicate)
    );

    let e = err_after_head("m=audio 9 RTP/AVP 0\r\nt=0 0\r\n");
    assert_eq!(e, line_error(6, LineKind::Timing, LineError::InMediaSection));
    assert_eq!(
        e.to_string(),
        "line 6 (t=): belongs at session level, not in a media section (RFC 8866 §5)"
    );

    let e = err("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nr=7d 1h 0\r\nt=0 0\r\n");
    assert_eq!(e, line_error(4, LineKind::Repeat, LineError::RepeatWithoutTiming));
}

#[test]
fn bad_address_lines() {
    assert_eq!(
        err_after_head("c=IN IP4\r\n"),
        line_error(5, LineKind::Connection, ValueError::Missing("address"))
    );
    let e = err_after_head("c=IN IP4 1.2.3.4 extra\r\n");
    assert_eq!(
        e,
        line_error(5, LineKind::Connection, ValueError::Trailing("extra".into()))
    );
    assert_eq!(e.to_string(), "line 5 (c=): unexpected `extra` after the last field");
    assert_eq!(
        err("v=0\r\no=- 1\r\n"),
        line_error(2, LineKind::Origin, ValueError::Missing("session version"))
    );
    assert_eq!(
        err_after_head("b=AS\r\n"),
        line_error(5, LineKind::Bandwidth, ValueError::Missing("`:<bandwidth>`"))
    );
}

/// Each known attribute's grammar is checked, with the attribute named in
/// the error.
#[test]
fn bad_attributes() {
    let cases: &[(&str, &str, &str)] = &[
        ("a=mid", "mid", "value is missing"),
        ("a=mid:has space", "mid", "invalid mid: `has space`"),
        (
            "a=rtpmap:200 opus/48000/2",
            "rtpmap",
            "invalid payload type (0-127): `200`",
        ),
        ("a=rtpmap:111 opus", "rtpmap", "clock rate is missing"),
        (
            "a=rtpmap:111 opus/48000/2/1",
            "rtpmap",
            "unexpected `/1` after the last field",
        ),
        ("a=fmtp:x a=b", "fmtp", "invalid payload type (0-127): `x`"),
        ("a=rtcp-fb:96", "rtcp-fb", "feedback type is missing"),
        (
            "a=fingerprint:sha-256 ZZ:00",
            "fingerprint",
            "invalid fingerprint: `ZZ:00`",
        ),
        (
            "a=fingerprint:sha-256 A:BC",
            "fingerprint",
            "invalid fingerprint: `A:BC`",
        ),
        ("a=fingerprint:sha-256", "fingerprint", "fingerprint is missing"),
        ("a=setup:sideways", "setup", "invalid setup role: `sideways`"),
        (
            "a=extmap:0 urn:x",
            "extmap",
            "invalid extension id (1-255 or 4096-4351): `0`",
        ),
        ("a=extmap:1/sideways urn:x", "extmap", "invalid direction: `sideways`"),
        ("a=extmap:1", "extmap", "extension URI is missing"),
        ("a=ssrc:1", "ssrc", "source attribute is missing"),
        ("a=ssrc-group:FID 1 x", "ssrc-group", "invalid SSRC: `x`"),
        (
            "a=rid:q sideways",
            "rid",
            "invalid direction (send or recv): `sideways`",
        ),
        ("a=rid:q! send", "rid", "invalid rid id: `q!`"),
        ("a=rid:q send pt=96,x", "rid", "invalid payload type (0-127): `x`"),
        ("a=simulcast:send", "simulcast", "simulcast streams is missing"),
        (
            "a=simulcast:send a send b",
            "simulcast",
            "invalid simulcast direction (repeated): `send`",
        ),
        ("a=simulcast:send a;;b", "simulcast", "invalid simulcast rid: ``"),
        ("a=simulcast:", "simulcast", "simulcast direction is missing"),
        ("a=group:", "group", "group semantics is missing"),
        ("a=msid:", "msid", "msid stream id is missing"),
        ("a=msid:a b c", "msid", "unexpected `c` after the last field"),
        ("a=ice-ufrag:b@d", "ice-ufrag", "invalid ice-ufrag: `b@d`"),
        ("a=ice-options:", "ice-options", "ICE option is missing"),
        ("a=candidate:", "candidate", "candidate is missing"),
        ("a=sctp-port:99999", "sctp-port", "invalid SCTP port: `99999`"),
        ("a=rtcp:9 IN", "rtcp", "address type is missing"),
        ("a=", "", "attribute name is missing"),
        ("a=:x", "", "attribute name is missing"),
    ];
    for (line, name, message) in cases {
        let e = err_after_head(&format!("m=video 9 UDP/TLS/RTP/SAVPF 96\r\n{line}\r\n"));
        let ParseError::Line {
            line: number,
            kind,
            error,
        } = &e
        else {
            panic!("{line}: {e:?}")
        };
        assert_eq!((*number, kind), (6, &attribute(name)), "{line}");
        assert_eq!(error.to_string(), *message, "{line}");
        assert_eq!(e.to_string(), format!("line 6 (a={name}): {message}"), "{line}");
    }
}

#[test]
fn long_values_are_cut_on_a_char_boundary() {
    let value = "é".repeat(100);
    let e = err_after_head(&format!("a=mid:{value}\r\n"));
    let expected = format!("{}…", "é".repeat(64));
    assert_eq!(e, line_error(5, attribute("mid"), invalid("mid", &expected)));
}
