//! Scripted runs: the hooks a script may put on the election network (a
//! message filter, a log of every notification sent, jitter, held dials)
//! and scripts of fault steps, each fired by a time or by a condition on
//! the world (the named scenarios of `scenarios`).

use std::time::Duration;

use crate::wire::Notification;

use super::schedule::Ev;
use super::world::World;

/// One notification as it is written on an election link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope {
    /// Sender sid.
    pub from: i64,
    /// Receiver sid.
    pub to: i64,
    /// When it was written on the link.
    pub sent_at: Duration,
    /// The notification.
    pub notification: Notification,
}

/// What a script's filter does with a notification about to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Deliver after the usual delay.
    Deliver,
    /// Lose it.
    Drop,
    /// Deliver this instead.
    Replace(Notification),
    /// Deliver after this extra delay.
    Delay(Duration),
}

/// A notification filter: sees each write once.
pub type Filter = Box<dyn FnMut(&Envelope) -> Fate>;

/// What a script hooks into the election network.
#[derive(Default)]
pub(super) struct Hooks {
    pub filter: Option<Filter>,
    /// Every notification written, when recording.
    pub sent: Option<Vec<Envelope>>,
    /// Extra random delay in `0..jitter` per message.
    pub jitter: Duration,
    /// (a, b, until): dials between a and b stay in progress until then.
    pub slow: Vec<(i64, i64, Duration)>,
    /// A starting process gets links to every running one at once (the
    /// old test kit's model: no dial delays at start).
    pub instant_links: bool,
    /// Per sid, a fixed fsync latency (a slow disk).
    pub slow_disk: std::collections::BTreeMap<i64, Duration>,
}

impl Hooks {
    /// Records `env` and asks the filter what becomes of it.
    pub(super) fn fate(&mut self, env: &Envelope) -> Fate {
        if let Some(s) = self.sent.as_mut() {
            s.push(*env);
        }
        match self.filter.as_mut() {
            Some(f) => f(env),
            None => Fate::Deliver,
        }
    }

    /// How much longer a dial between `a` and `b` is held at `now`.
    pub(super) fn slow_dial(&self, a: i64, b: i64, now: Duration) -> Duration {
        self.slow
            .iter()
            .filter(|(x, y, _)| (*x, *y) == (a, b) || (*x, *y) == (b, a))
            .map(|(_, _, until)| until.saturating_sub(now))
            .max()
            .unwrap_or(Duration::ZERO)
    }
}

/// When a step fires.
pub(super) enum Trigger {
    /// This long after the previous step fired.
    After(Duration),
    /// As soon as the condition holds (checked after every event).
    When(Box<dyn Fn(&World) -> bool>),
}

/// One step of a script.
pub(super) struct Step {
    /// What the step does, for traces and failure messages.
    pub name: &'static str,
    pub when: Trigger,
    pub act: Box<dyn FnMut(&mut World)>,
    /// Give up (the scenario failed to reach its window) if the step has
    /// not fired this long after the previous one.
    pub patience: Duration,
}

/// A list of steps run in order.
pub(super) struct Script {
    steps: Vec<Step>,
    next: usize,
    armed_at: Duration,
    /// (step, when it fired), in order.
    pub fired: Vec<(&'static str, Duration)>,
    /// The step that ran out of patience, if one did.
    pub stuck: Option<&'static str>,
}

impl Script {
    pub(super) fn new(steps: Vec<Step>) -> Script {
        Script {
            steps,
            next: 0,
            armed_at: Duration::ZERO,
            fired: Vec::new(),
            stuck: None,
        }
    }

    /// Every step fired (or one got stuck).
    pub(super) fn finished(&self) -> bool {
        self.next >= self.steps.len() || self.stuck.is_some()
    }
}

impl World {
    /// Fires every step whose trigger holds now, in order.
    pub(super) fn run_script(&mut self) {
        let Some(mut script) = self.script.take() else {
            return;
        };
        while !script.finished() && !self.done {
            let now = self.now;
            let step = &script.steps[script.next];
            let due = match &step.when {
                Trigger::After(d) => now >= script.armed_at + *d,
                Trigger::When(f) => f(self),
            };
            if !due {
                if now > script.armed_at + step.patience {
                    script.stuck = Some(step.name);
                    let name = step.name;
                    self.log(|| format!("SCRIPT: step '{name}' never came"));
                }
                break;
            }
            let name = step.name;
            self.log(|| format!("SCRIPT: {name}"));
            let mut act: Box<dyn FnMut(&mut World)> = Box::new(|_| {});
            std::mem::swap(&mut act, &mut script.steps[script.next].act);
            act(self);
            script.fired.push((name, now));
            script.next += 1;
            script.armed_at = now;
            // Wake up for the next time-based step (and for patience).
            if let Some(s) = script.steps.get(script.next) {
                let at = match s.when {
                    Trigger::After(d) => now + d,
                    Trigger::When(_) => now + s.patience,
                };
                self.schedule_at(at, Ev::Script);
                self.schedule_at(now + s.patience + Duration::from_millis(1), Ev::Script);
            }
        }
        self.script = Some(script);
    }
}
