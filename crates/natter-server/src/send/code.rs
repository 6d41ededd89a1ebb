//! Transfer codes: `7-crimson-otter-maple`, a nameplate that picks the
//! room on the server (`send-7`) and three words from [`WORDS`] that
//! never leave the two machines. Each side proves it knows the words with
//! an HMAC (RFC 2104) keyed by PBKDF2 (RFC 8018 §5.2) of them, bound to
//! both participant ids; the receiver proves first, so a stranger in the
//! room gets nothing to guess at offline from the sender.
//!
//! This is no PAKE (magic-wormhole's SPAKE2): a participant who joins
//! the nameplate's room under the sender's name can take one receiver's
//! proof and guess the 24 bits offline, each guess costing the PBKDF2
//! rounds below.

use std::fmt;
use std::num::NonZeroU32;

use aws_lc_rs::{constant_time, hmac, pbkdf2};

/// Words a code is made of: 256, so each carries 8 bits; short, common,
/// and no two share their first three letters.
pub const WORDS: [&str; 256] = [
    "acorn", "admiral", "agent", "alpine", "amber", "anchor", "angel", "apple", "april", "arctic", "arrow", "aspen",
    "atlas", "autumn", "avocado", "badger", "bamboo", "banjo", "barley", "basket", "beacon", "beetle", "berry",
    "bishop", "blanket", "blossom", "bobcat", "bonfire", "border", "bottle", "bramble", "breeze", "bridge", "bronze",
    "bubble", "bucket", "buffalo", "bugle", "butter", "cabin", "cactus", "camel", "candle", "captain", "carrot",
    "castle", "cedar", "cello", "chalk", "cherry", "chimney", "cider", "cinnamon", "circus", "citrus", "clover",
    "cobalt", "coconut", "comet", "copper", "coral", "cotton", "cougar", "crater", "crimson", "crystal", "cuckoo",
    "cypress", "daisy", "dancer", "delta", "desert", "diamond", "dingo", "dolphin", "donkey", "dragon", "drum", "dune",
    "eagle", "echo", "eclipse", "elbow", "elephant", "ember", "emerald", "engine", "falcon", "feather", "fennel",
    "ferret", "fiddle", "finch", "flamingo", "flute", "forest", "fossil", "fountain", "fox", "frost", "galaxy",
    "garden", "gecko", "geyser", "ginger", "glacier", "goblin", "gondola", "gorilla", "granite", "guitar", "gumbo",
    "hammock", "harbor", "hazel", "hedgehog", "helmet", "heron", "hickory", "honey", "horizon", "husky", "iceberg",
    "igloo", "indigo", "island", "ivory", "jackal", "jaguar", "jasmine", "jelly", "jigsaw", "jungle", "kangaroo",
    "kayak", "kettle", "kiwi", "koala", "ladder", "lagoon", "lantern", "laurel", "lemon", "leopard", "lilac",
    "lobster", "locket", "lotus", "lynx", "magnet", "mango", "maple", "marble", "meadow", "melon", "meteor", "mint",
    "mirror", "mitten", "monsoon", "mosaic", "muffin", "mustard", "nectar", "needle", "nickel", "nimbus", "noodle",
    "nutmeg", "oasis", "ocean", "olive", "onion", "opal", "orbit", "orchid", "osprey", "otter", "oyster", "paddle",
    "panda", "papaya", "parrot", "peach", "pebble", "pelican", "pepper", "piano", "pilot", "pine", "planet", "plum",
    "polar", "poppy", "prairie", "pretzel", "puffin", "pumpkin", "quartz", "quill", "rabbit", "radish", "rainbow",
    "raven", "record", "reef", "ribbon", "river", "robin", "rocket", "ruby", "saddle", "saffron", "salmon", "sapphire",
    "scarlet", "shadow", "silver", "sketch", "sloth", "snow", "sparrow", "spider", "spruce", "squash", "starfish",
    "stone", "summit", "sunset", "swan", "tango", "teapot", "thistle", "thunder", "tiger", "timber", "tomato", "topaz",
    "tornado", "toucan", "trumpet", "tulip", "tundra", "turtle", "umbrella", "velvet", "violet", "volcano", "walnut",
    "wasabi", "whale", "willow", "winter", "wizard", "yak", "zebra",
];

/// Words after the nameplate.
const SECRET_WORDS: usize = 3;
/// Nameplates are drawn from 1 to this.
const MAX_NAMEPLATE: u32 = 999;
/// PBKDF2-HMAC-SHA256 rounds: tens of milliseconds per guess.
const PBKDF2_ROUNDS: u32 = 100_000;

/// A parsed or fresh code. Its `Debug` shows the nameplate only, so it
/// never reaches a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Code {
    nameplate: u32,
    words: [&'static str; SECRET_WORDS],
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Code({}-…)", self.nameplate)
    }
}

impl Code {
    /// A fresh code from the system's random source.
    pub fn generate() -> Code {
        let nameplate = 1 + rand::random::<u32>() % MAX_NAMEPLATE;
        let words = std::array::from_fn(|_| WORDS[usize::from(rand::random::<u8>())]);
        Code { nameplate, words }
    }

    /// `N-word-word-word`, any case, spaces around ignored.
    pub fn parse(text: &str) -> Result<Code, String> {
        let text = text.trim().to_ascii_lowercase();
        let shape = || format!("expected NUMBER-WORD-WORD-WORD, like {}", Code::example());
        let mut parts = text.split('-');
        let nameplate = parts
            .next()
            .and_then(|n| n.parse::<u32>().ok())
            .filter(|n| (1..=MAX_NAMEPLATE).contains(n))
            .ok_or_else(|| format!("a code starts with a number from 1 to {MAX_NAMEPLATE}: {}", shape()))?;
        let mut words = [""; SECRET_WORDS];
        for slot in &mut words {
            let word = parts.next().ok_or_else(shape)?;
            *slot = WORDS
                .iter()
                .find(|w| **w == word)
                .ok_or_else(|| format!("{word:?} is not a word of natter's codes (a typo?)"))?;
        }
        if parts.next().is_some() {
            return Err(shape());
        }
        Ok(Code { nameplate, words })
    }

    fn example() -> &'static str {
        "7-crimson-otter-maple"
    }

    /// The part that picks the room, safe to show.
    pub fn nameplate(&self) -> u32 {
        self.nameplate
    }

    /// The room on the server: the nameplate only.
    pub fn room(&self) -> String {
        format!("send-{}", self.nameplate)
    }

    /// The code as people type it (secret: print, never log).
    pub fn reveal(&self) -> String {
        format!("{}-{}", self.nameplate, self.words.join("-"))
    }

    /// The proof key: PBKDF2 of the words, salted with the room.
    pub fn key(&self) -> ProofKey {
        let mut key = [0u8; 32];
        // PBKDF2_ROUNDS is a non-zero constant.
        let rounds = NonZeroU32::new(PBKDF2_ROUNDS).expect("rounds are not zero");
        let salt = format!("natter send v1 {}", self.room());
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            rounds,
            salt.as_bytes(),
            self.words.join("-").as_bytes(),
            &mut key,
        );
        ProofKey(hmac::Key::new(hmac::HMAC_SHA256, &key))
    }
}

/// Which side a proof speaks for.
#[derive(Debug, Clone, Copy)]
pub enum Role {
    Sender,
    Receiver,
}

/// What a proof binds besides the code: the two participants, and the
/// DTLS certificate fingerprints (RFC 8122 §5, `sha-256 AB:…`) of the
/// connection between them, each as this side sees it. A signaling
/// server that put itself in the middle terminates two DTLS connections
/// with its own certificate, so the two sides see different
/// fingerprints and each other's proofs fail (docs/send.md).
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    pub sender: &'a str,
    pub receiver: &'a str,
    pub sender_fingerprint: &'a str,
    pub receiver_fingerprint: &'a str,
}

/// Makes and checks proofs of knowing a code.
pub struct ProofKey(hmac::Key);

impl ProofKey {
    /// `role`'s proof for the transfer `binding` describes, as hex.
    pub fn prove(&self, role: Role, binding: &Binding) -> String {
        let tag = hmac::sign(&self.0, &transcript(role, binding));
        tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `proof` is `role`'s for `binding`, compared in constant time.
    pub fn check(&self, role: Role, binding: &Binding, proof: &str) -> bool {
        let expected = self.prove(role, binding);
        constant_time::verify_slices_are_equal(expected.as_bytes(), proof.as_bytes()).is_ok()
    }
}

fn transcript(role: Role, binding: &Binding) -> Vec<u8> {
    let role = match role {
        Role::Sender => "sender",
        Role::Receiver => "receiver",
    };
    let mut text = role.to_owned();
    // Each field after its length, so no two bindings make the same bytes.
    for field in [
        binding.sender,
        binding.receiver,
        binding.sender_fingerprint,
        binding.receiver_fingerprint,
    ] {
        text.push_str(&format!("\n{}:{field}", field.len()));
    }
    text.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_distinct_and_lowercase() {
        let mut sorted = WORDS.to_vec();
        sorted.sort_unstable();
        sorted.dedup_by(|a, b| a[..3.min(a.len())] == b[..3.min(b.len())]);
        assert_eq!(sorted.len(), 256, "no two words share their first three letters");
        assert!(WORDS.iter().all(|w| w.bytes().all(|b| b.is_ascii_lowercase())));
    }

    #[test]
    fn codes_round_trip_and_hide_their_words() {
        let code = Code::generate();
        let text = code.reveal();
        assert_eq!(Code::parse(&text.to_ascii_uppercase()), Ok(code.clone()));
        assert!(text.starts_with(&code.room()["send-".len()..]));
        let debug = format!("{code:?}");
        assert!(code.words.iter().all(|w| !debug.contains(w)), "{debug}");
    }

    #[test]
    fn bad_codes_say_what_is_wrong() {
        assert!(Code::parse("crimson-otter")
            .unwrap_err()
            .contains("starts with a number"));
        assert!(Code::parse("0-crimson-otter-maple").is_err());
        assert!(Code::parse("7-crimson-otter")
            .unwrap_err()
            .contains("NUMBER-WORD-WORD-WORD"));
        assert!(Code::parse("7-crimson-otter-mapel").unwrap_err().contains("\"mapel\""));
        assert!(Code::parse("7-crimson-otter-maple-fox").is_err());
        assert!(Code::parse(" 7-Crimson-Otter-Maple ").is_ok());
    }

    #[test]
    fn proofs_bind_the_words_the_role_the_pair_and_the_certificates() {
        let code = Code::parse("7-crimson-otter-maple").unwrap();
        let key = code.key();
        let binding = Binding {
            sender: "s",
            receiver: "r",
            sender_fingerprint: "sha-256 AA:01",
            receiver_fingerprint: "sha-256 BB:02",
        };
        let proof = key.prove(Role::Receiver, &binding);
        assert!(key.check(Role::Receiver, &binding, &proof));
        assert!(!key.check(Role::Sender, &binding, &proof));
        assert!(!key.check(
            Role::Receiver,
            &Binding {
                receiver: "x",
                ..binding
            },
            &proof
        ));
        // A server in the middle: the sender sees the server's certificate as the receiver's.
        let relayed = Binding {
            receiver_fingerprint: "sha-256 EE:03",
            ..binding
        };
        assert!(!key.check(Role::Receiver, &relayed, &proof));
        let other = Code::parse("7-crimson-otter-mango").unwrap().key();
        assert!(!other.check(Role::Receiver, &binding, &proof));
    }

    #[test]
    fn the_transcript_is_what_docs_send_md_writes() {
        let binding = Binding {
            sender: "ab",
            receiver: "c",
            sender_fingerprint: "sha-256 AA",
            receiver_fingerprint: "sha-256 BB",
        };
        let text = transcript(Role::Sender, &binding);
        assert_eq!(text, b"sender\n2:ab\n1:c\n10:sha-256 AA\n10:sha-256 BB");
    }
}
