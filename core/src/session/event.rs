//! What a receive can yield besides a notification, and the settings of a subscription.

use super::Notification;
use std::time::Duration;

/// Notifications a receiver never got: it fell past its lag limit, or held back a full queue
/// under the cut policy, and was moved forward. Reported once, in order: after everything
/// received before the skipped range, before everything after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Gap {
    /// Notifications on the receiver's channels that were skipped. When a receiver's channel
    /// names exceed 1 KiB of text, every notification in the skipped range counts.
    pub skipped: u64,
    /// Commit sequence numbers ([`Notification::txn`]) of the first and last skipped
    /// notifications.
    pub first_txn: u64,
    pub last_txn: u64,
    /// The position the receiver resumed from: the notifications after the gap have positions
    /// at or past it.
    pub resumed_at: u64,
}

/// One thing a receive yields, in order ([`crate::Connection::next_event`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Notification(Notification),
    Gap(Gap),
}

/// When a subscription's notifications count as processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AckMode {
    /// Only [`crate::Connection::ack`] acknowledges (at-least-once with explicit commits, as a
    /// consumer that acknowledges after its own work is done).
    #[default]
    Explicit,
    /// Each receive acknowledges every notification handed out before it: a consumer killed
    /// while processing one gets that one again, and nothing earlier.
    Auto,
}

/// How to attach to a durable subscription ([`crate::Connection::subscribe`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubscribeOptions {
    pub ack: AckMode,
    /// Create the subscription if it does not exist (the default); `Some(false)` attaches only to
    /// an existing one (`42704` otherwise).
    pub create: Option<bool>,
    /// When another session is attached: wait up to this long for it to detach, instead of
    /// failing at once with `55006` ([`crate::ErrorKind::InUse`]).
    pub wait: Option<Duration>,
    /// Lag limits: past them, the subscription is cut and its next receive reports a [`Gap`].
    /// `None`: no limit (the subscription holds the queue back, up to its maximum size).
    pub max_lag_bytes: Option<u64>,
    pub max_lag_age: Option<Duration>,
}

impl SubscribeOptions {
    pub fn new() -> SubscribeOptions {
        SubscribeOptions::default()
    }
    pub fn ack(mut self, mode: AckMode) -> SubscribeOptions {
        self.ack = mode;
        self
    }
    pub fn create(mut self, yes: bool) -> SubscribeOptions {
        self.create = Some(yes);
        self
    }
    pub fn wait(mut self, up_to: Duration) -> SubscribeOptions {
        self.wait = Some(up_to);
        self
    }
    pub fn max_lag_bytes(mut self, bytes: u64) -> SubscribeOptions {
        self.max_lag_bytes = Some(bytes);
        self
    }
    pub fn max_lag_age(mut self, age: Duration) -> SubscribeOptions {
        self.max_lag_age = Some(age);
        self
    }
}
