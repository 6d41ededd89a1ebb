//! Active-speaker detection from the audio levels publishers put in
//! their packets (RFC 6464 header extension: the level of the audio in
//! -dBov, 0 loudest to 127 silence, and a voice-activity flag).
//!
//! Each tick (300 ms by default) averages every participant's loudness
//! over the packets of the tick (a tick without packets, as with DTX,
//! counts as silence) and smooths it exponentially; the loudest smoothed
//! participant above a threshold becomes the active speaker, taking over
//! from the current one only when louder by a margin, so speakers do not
//! flicker while two people talk.

use std::time::{Duration, Instant};

/// How the detector decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpeakerConfig {
    pub tick: Duration,
    /// The quietest level that counts as speech, in -dBov (RFC 6464 §3).
    pub threshold_dbov: u8,
    /// A new speaker's smoothed loudness must exceed the current one's by
    /// this many dB.
    pub margin_db: u8,
}

impl Default for SpeakerConfig {
    fn default() -> Self {
        Self {
            tick: Duration::from_millis(300),
            threshold_dbov: 60,
            margin_db: 6,
        }
    }
}

/// A level for a participant the detector does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("audio level for a participant not added to the speaker detector")]
pub struct UnknownParticipant;

/// RFC 6464 §3: 127 is the quietest level, -127 dBov.
const SILENCE_DBOV: u32 = 127;

#[derive(Clone, Copy, Debug)]
struct Loudness<P> {
    participant: P,
    /// Sum of (127 - level) over the tick's packets with voice, and how
    /// many packets came.
    sum: u32,
    packets: u32,
    /// Smoothed loudness, in dB above -127 dBov, times 16.
    smoothed: u32,
}

/// Who is talking in one room.
///
/// - Getters: [`SpeakerDetector::active`].
/// - Input: [`SpeakerDetector::add`]/[`SpeakerDetector::remove`] as
///   participants publish audio and leave,
///   [`SpeakerDetector::handle_audio_level`] per audio packet,
///   [`SpeakerDetector::handle_timeout`].
/// - Output: [`SpeakerDetector::poll_timeout`], then
///   [`SpeakerDetector::poll_event`]: the new active speaker, when it changed.
///
/// Only `add` allocates (growing the participant list).
#[derive(Clone, Debug)]
pub struct SpeakerDetector<P> {
    config: SpeakerConfig,
    participants: Vec<Loudness<P>>,
    active: Option<P>,
    changed: bool,
    next_tick: Option<Instant>,
}

impl<P: Copy + Eq> SpeakerDetector<P> {
    pub fn new(config: SpeakerConfig) -> Self {
        Self {
            config,
            participants: Vec::new(),
            active: None,
            changed: false,
            next_tick: None,
        }
    }

    /// The active speaker.
    pub fn active(&self) -> Option<P> {
        self.active
    }

    /// Starts following `participant`'s audio; the ticks start with the
    /// first participant.
    pub fn add(&mut self, participant: P, now: Instant) {
        if !self.participants.iter().any(|p| p.participant == participant) {
            self.participants.push(Loudness {
                participant,
                sum: 0,
                packets: 0,
                smoothed: 0,
            });
        }
        self.next_tick.get_or_insert(now + self.config.tick);
    }

    /// Stops following `participant`; if it was the active speaker,
    /// nobody is until the next tick says otherwise.
    pub fn remove(&mut self, participant: P) {
        self.participants.retain(|p| p.participant != participant);
        if self.active == Some(participant) {
            self.active = None;
            self.changed = true;
        }
        if self.participants.is_empty() {
            self.next_tick = None;
        }
    }

    /// One audio packet's RFC 6464 level (-dBov, 0..=127; larger values
    /// are taken as 127) and voice-activity flag.
    pub fn handle_audio_level(&mut self, participant: P, level: u8, voice: bool) -> Result<(), UnknownParticipant> {
        let entry = self
            .participants
            .iter_mut()
            .find(|p| p.participant == participant)
            .ok_or(UnknownParticipant)?;
        // Saturating: a flood of packets must not overflow the tick's sums.
        entry.packets = entry.packets.saturating_add(1);
        if voice {
            entry.sum = entry
                .sum
                .saturating_add(SILENCE_DBOV - u32::from(level).min(SILENCE_DBOV));
        }
        Ok(())
    }

    /// The next tick.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_tick
    }

    /// Runs the ticks that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(due) = self.next_tick.filter(|due| *due <= now) {
            self.next_tick = Some(due + self.config.tick);
            self.tick();
        }
    }

    /// The new active speaker (`None`: nobody) once after each change.
    pub fn poll_event(&mut self) -> Option<Option<P>> {
        std::mem::take(&mut self.changed).then_some(self.active)
    }

    fn tick(&mut self) {
        for entry in &mut self.participants {
            // A tick without packets is silence.
            let mean = (u64::from(entry.sum) * 16)
                .checked_div(u64::from(entry.packets))
                .map_or(0, |mean| mean as u32);
            // Smoothing over about four ticks.
            entry.smoothed = (entry.smoothed * 3 + mean) / 4;
            entry.sum = 0;
            entry.packets = 0;
        }
        let threshold = (SILENCE_DBOV - u32::from(self.config.threshold_dbov)) * 16;
        let loudest = self
            .participants
            .iter()
            .filter(|p| p.smoothed >= threshold)
            .max_by_key(|p| p.smoothed);
        let current = self
            .active
            .and_then(|active| self.participants.iter().find(|p| p.participant == active))
            .filter(|p| p.smoothed >= threshold);
        let next = match (loudest, current) {
            (None, _) => None,
            (Some(loudest), None) => Some(loudest.participant),
            (Some(loudest), Some(current)) => {
                if loudest.smoothed > current.smoothed + u32::from(self.config.margin_db) * 16 {
                    Some(loudest.participant)
                } else {
                    Some(current.participant)
                }
            }
        };
        if next != self.active {
            self.active = next;
            self.changed = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `ticks` ticks with 15 packets (20 ms each) per participant per
    /// tick at the given levels (None: no packets), returning the events.
    fn run(
        detector: &mut SpeakerDetector<u32>,
        now: &mut Instant,
        ticks: u32,
        levels: &[(u32, Option<u8>)],
    ) -> Vec<Option<u32>> {
        let mut events = Vec::new();
        for _ in 0..ticks {
            for _ in 0..15 {
                for &(participant, level) in levels {
                    if let Some(level) = level {
                        detector.handle_audio_level(participant, level, level < 127).unwrap();
                    }
                }
            }
            *now = detector.poll_timeout().unwrap();
            detector.handle_timeout(*now);
            events.extend(std::iter::from_fn(|| detector.poll_event()));
        }
        events
    }

    #[test]
    fn the_active_speaker_follows_who_talks() {
        let mut detector = SpeakerDetector::new(SpeakerConfig::default());
        let mut now = Instant::now();
        for participant in [1, 2, 3] {
            detector.add(participant, now);
        }
        // Silence: nobody.
        assert!(run(&mut detector, &mut now, 5, &[(1, Some(127)), (2, Some(127)), (3, None)]).is_empty());
        // 1 talks.
        let events = run(&mut detector, &mut now, 5, &[(1, Some(30)), (2, Some(127)), (3, None)]);
        assert_eq!(events, vec![Some(1)]);
        // 2 talks a little louder than 1: no flicker.
        let events = run(&mut detector, &mut now, 5, &[(1, Some(30)), (2, Some(27)), (3, None)]);
        assert!(events.is_empty());
        // 1 stops; 2 takes over.
        let events = run(&mut detector, &mut now, 10, &[(1, Some(127)), (2, Some(27)), (3, None)]);
        assert_eq!(events, vec![Some(2)]);
        // 2 leaves.
        detector.remove(2);
        assert_eq!(detector.poll_event(), Some(None));
        assert_eq!(detector.handle_audio_level(2, 0, true), Err(UnknownParticipant));
    }
}
