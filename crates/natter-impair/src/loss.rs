//! Which packets a link loses: independently at random, or in bursts
//! with the Gilbert-Elliott model.

use rand::rngs::StdRng;
use rand::Rng;

use crate::error::ConfigError;
use crate::quantity::parse_probability;

/// How a link loses packets (apart from its queue overflowing).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum LossModel {
    /// No loss.
    #[default]
    None,
    /// Each packet is lost independently with this probability.
    Random(f64),
    /// Gilbert-Elliott: a two-state Markov chain stepped once per packet.
    /// From the good state the link turns bad with probability `p`, from
    /// the bad state good again with probability `r` (a mean burst of
    /// `1 / r` packets); in each state a packet is lost with that state's
    /// probability.
    GilbertElliott {
        p: f64,
        r: f64,
        bad_loss: f64,
        good_loss: f64,
    },
}

impl LossModel {
    /// Parses `p,r` (every packet lost while bad, none while good) or
    /// `p,r,bad_loss,good_loss`, each a probability such as `1%`.
    pub fn parse_bursts(text: &str) -> Result<LossModel, ConfigError> {
        let values = text
            .split(',')
            .map(|v| parse_probability("burst-loss", v))
            .collect::<Result<Vec<f64>, ConfigError>>()?;
        match values[..] {
            [p, r] => Ok(LossModel::GilbertElliott {
                p,
                r,
                bad_loss: 1.0,
                good_loss: 0.0,
            }),
            [p, r, bad_loss, good_loss] => Ok(LossModel::GilbertElliott {
                p,
                r,
                bad_loss,
                good_loss,
            }),
            _ => Err(ConfigError::value("burst-loss", text, "p,r or p,r,bad_loss,good_loss")),
        }
    }

    /// The fraction of packets lost in the long run.
    pub fn mean_loss(&self) -> f64 {
        match *self {
            LossModel::None => 0.0,
            LossModel::Random(p) => p,
            LossModel::GilbertElliott {
                p,
                r,
                bad_loss,
                good_loss,
            } => {
                if p + r == 0.0 {
                    // The chain never leaves the good state it starts in.
                    return good_loss;
                }
                let bad = p / (p + r);
                bad * bad_loss + (1.0 - bad) * good_loss
            }
        }
    }
}

/// A loss model with its state: whether a Gilbert-Elliott chain is in
/// its bad state (it starts good).
#[derive(Debug)]
pub(crate) struct LossProcess {
    model: LossModel,
    bad: bool,
}

impl LossProcess {
    pub(crate) fn new(model: LossModel) -> LossProcess {
        LossProcess { model, bad: false }
    }

    /// Steps the model by one packet: true if that packet is lost.
    pub(crate) fn lose(&mut self, rng: &mut StdRng) -> bool {
        match self.model {
            LossModel::None => false,
            LossModel::Random(p) => rng.gen_bool(p),
            LossModel::GilbertElliott {
                p,
                r,
                bad_loss,
                good_loss,
            } => {
                self.bad = rng.gen_bool(if self.bad { 1.0 - r } else { p });
                rng.gen_bool(if self.bad { bad_loss } else { good_loss })
            }
        }
    }
}
