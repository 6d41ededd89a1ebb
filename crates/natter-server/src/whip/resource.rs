//! The WHIP and WHEP sessions of `natter serve` (RFC 9725 §3: "WHIP
//! session", its "WHIP resource" URL), and the SFU answers they wait for.

use std::collections::{HashMap, HashSet};

use serde_json::Value;
use tokio::sync::oneshot;

use super::answer::Gathering;
use super::request::Role;
use crate::sfu::Signal;

/// The SFU's answer with its candidates, or why it refused the offer.
pub type Answered = Result<String, String>;

/// A participant whose answer is being gathered.
struct Waiting {
    gathering: Gathering,
    done: oneshot::Sender<Answered>,
}

/// One session, named by its resource id in the `Location` URL.
#[derive(Debug, Clone)]
pub struct Resource {
    pub role: Role,
    pub room: String,
    /// Its participant in the room's signaling and in the SFU.
    pub peer: String,
    /// RFC 9725 §4.3.1: the entity-tag of the ICE session, quoted.
    pub etag: String,
    /// The ICE username fragment of its offer: a PATCH with another one
    /// asks for an ICE restart.
    pub ufrag: Option<String>,
    /// The ufrag before the latest restart: a fragment with it carries
    /// late candidates of that generation (RFC 8838 §4.4), no restart.
    pub previous_ufrag: Option<String>,
    /// Its offer as the SFU last took it: an ICE restart (RFC 9725
    /// §4.3.2) offers it again with the client's new credentials.
    pub offer: String,
}

/// Every session, and the participants whose SFU answer is awaited.
#[derive(Default)]
pub struct Resources {
    sessions: HashMap<String, Resource>,
    /// Participants of WHIP and WHEP (sessions, and offers not answered
    /// yet): the SFU's messages to them go nowhere else.
    peers: HashSet<String>,
    waiting: HashMap<String, Waiting>,
    /// Numbers the default names, `whip-N` and `whep-N`.
    next_name: u64,
}

impl Resources {
    /// The default name of the next participant of `role`.
    pub fn next_name(&mut self, role: Role) -> String {
        self.next_name += 1;
        format!("{}-{}", role.name().to_ascii_lowercase(), self.next_name)
    }

    /// `peer` entered its room; its SFU answer is to come on the receiver.
    pub fn wait_for_answer(&mut self, peer: &str) -> oneshot::Receiver<Answered> {
        let (done, answered) = oneshot::channel();
        self.peers.insert(peer.to_owned());
        let gathering = Gathering::default();
        self.waiting.insert(peer.to_owned(), Waiting { gathering, done });
        answered
    }

    /// A message of the SFU: taken if it is for a WHIP or WHEP
    /// participant (its answer and candidates are gathered for the waiting
    /// request until end-of-candidates; `track`, `speaker` and `layers` are dropped:
    /// RFC 9725 §4.2 has one offer and one answer), given back otherwise.
    pub fn take_reply(&mut self, peer: &str, signal: Signal) -> Option<Signal> {
        if !self.peers.contains(peer) {
            return Some(signal);
        }
        let waiting = self.waiting.get_mut(peer)?;
        let done = match signal {
            Signal::Answer(sdp) => {
                waiting.gathering.answer(sdp);
                None
            }
            Signal::Candidate(Value::Null) => Some(None),
            Signal::Candidate(init) => {
                waiting.gathering.candidate(&init);
                None
            }
            Signal::Refused(why) => Some(Some(why)),
            Signal::Closed => Some(Some("the connection failed before the answer".to_owned())),
            Signal::Track { .. } | Signal::Speaker(_) | Signal::Layers { .. } => None,
        };
        if let Some(refused) = done {
            let waiting = self.waiting.remove(peer).expect("found above");
            let answered = match (refused, waiting.gathering.complete()) {
                (Some(why), _) => Err(why),
                (None, Some(sdp)) => Ok(sdp),
                (None, None) => Err("the SFU ended its candidates before its answer".to_owned()),
            };
            let _ = waiting.done.send(answered);
        }
        None
    }

    /// The answered session is a resource now.
    pub fn insert(&mut self, id: String, resource: Resource) {
        self.waiting.remove(&resource.peer);
        self.sessions.insert(id, resource);
    }

    pub fn get(&self, id: &str) -> Option<&Resource> {
        self.sessions.get(id)
    }

    /// Removes a session, or forgets a participant whose offer was not
    /// answered.
    pub fn remove(&mut self, id: &str) -> Option<Resource> {
        let resource = self.sessions.remove(id)?;
        self.peers.remove(&resource.peer);
        Some(resource)
    }

    /// Removes the session of participant `peer`, if it has one.
    pub fn remove_peer(&mut self, peer: &str) -> Option<Resource> {
        let id = (self.sessions.iter())
            .find(|(_, r)| r.peer == peer)
            .map(|(id, _)| id.clone())?;
        self.remove(&id)
    }

    /// An ICE restart of session `id` was answered: its new entity-tag
    /// (RFC 9725 §4.3.1), ufrag and offer. False if it ended meanwhile.
    pub fn restarted(&mut self, id: &str, etag: String, ufrag: String, offer: String) -> bool {
        let Some(resource) = self.sessions.get_mut(id) else {
            return false;
        };
        resource.etag = etag;
        resource.previous_ufrag = resource.ufrag.replace(ufrag);
        resource.offer = offer;
        true
    }

    /// `peer`'s answer is no longer awaited (a restart that failed); its
    /// session stays.
    pub fn stop_waiting(&mut self, peer: &str) {
        self.waiting.remove(peer);
    }

    pub fn forget(&mut self, peer: &str) {
        self.waiting.remove(peer);
        self.peers.remove(peer);
    }

    /// Sessions of each role, and participants still awaiting an answer.
    pub fn counts(&self) -> (usize, usize, usize) {
        let of = |role| self.sessions.values().filter(|r| r.role == role).count();
        (of(Role::Publisher), of(Role::Player), self.waiting.len())
    }
}
