//! Where to connect: the server URL a person types (`http://host:8080`,
//! the web client's `/?room=R#token=T` link, or `ws://host:8080/ws`),
//! made into the signaling WebSocket URL.

use crate::error::Error;

/// A parsed server URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    /// `ws://` or `wss://` URL of the signaling socket.
    pub websocket: String,
    /// The `room` of the query, if any.
    pub room: Option<String>,
    /// The `token` of the fragment, if any (the REST API's `url`).
    pub token: Option<String>,
}

impl ServerUrl {
    /// Parses `url`. `http(s)://` becomes `ws(s)://` with path `/ws`
    /// unless it names `/ws`; a bare `host:port` is taken as `http://`.
    pub fn parse(url: &str) -> Result<ServerUrl, Error> {
        let bad = |reason| Error::BadUrl {
            url: url.to_owned(),
            reason,
        };
        let trimmed = url.trim();
        let (scheme, rest) = match trimmed.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None => ("http".to_owned(), trimmed),
        };
        let secure = match scheme.as_str() {
            "http" | "ws" => false,
            "https" | "wss" => true,
            _ => return Err(bad("the scheme must be http, https, ws or wss")),
        };
        let (rest, fragment) = rest.split_once('#').unwrap_or((rest, ""));
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(bad("no host"));
        }
        if authority.contains('@') {
            return Err(bad("user names in the URL are not supported; pass --token"));
        }
        if authority.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("the host has spaces or control characters"));
        }
        let port = if authority.starts_with('[') {
            authority.split_once("]:").map(|(_, port)| port)
        } else {
            authority.rsplit_once(':').map(|(_, port)| port)
        };
        if port.is_some_and(|port| port.parse::<u16>().is_err()) {
            return Err(bad("the port is not a number from 0 to 65535"));
        }
        let path = if path.trim_end_matches('/').ends_with("/ws") {
            path.trim_end_matches('/')
        } else {
            "/ws"
        };
        let ws = if secure { "wss" } else { "ws" };
        Ok(ServerUrl {
            websocket: format!("{ws}://{authority}{path}"),
            room: param(query, "room"),
            token: param(fragment, "token"),
        })
    }
}

/// The value of `key` in `a=b&c=d`, percent-decoded.
fn param(pairs: &str, key: &str) -> Option<String> {
    pairs
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| percent_decode(v))
        .filter(|v| !v.is_empty())
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let u = ServerUrl::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(u.websocket, "ws://127.0.0.1:8080/ws");
        assert_eq!((u.room, u.token), (None, None));
        let u = ServerUrl::parse("https://meet.example.org/?room=standup#token=a.b.c").unwrap();
        assert_eq!(u.websocket, "wss://meet.example.org/ws");
        assert_eq!(u.room.as_deref(), Some("standup"));
        assert_eq!(u.token.as_deref(), Some("a.b.c"));
        assert_eq!(
            ServerUrl::parse("ws://[::1]:9000/ws").unwrap().websocket,
            "ws://[::1]:9000/ws"
        );
        assert_eq!(
            ServerUrl::parse("localhost:8080").unwrap().websocket,
            "ws://localhost:8080/ws"
        );
        assert_eq!(
            ServerUrl::parse("http://h/?room=a%2Db").unwrap().room.as_deref(),
            Some("a-b")
        );
    }

    #[test]
    fn bad_urls_say_why() {
        for (url, why) in [
            ("ftp://host", "scheme"),
            ("http://", "no host"),
            ("http://host:99999", "port"),
            ("http://host:abc", "port"),
            ("http://user:pw@host", "user names"),
        ] {
            let e = ServerUrl::parse(url).unwrap_err().to_string();
            assert!(e.contains(why), "{url}: {e}");
        }
    }
}
