//! Durable subscriptions from a session's side: attach, acknowledge, detach, drop
//! (`queue/subs.rs` holds them in the slot table). A session is either a listener or attached to
//! one subscription at a time; it notifies either way.

use super::event::{AckMode, Event, SubscribeOptions};
use super::inbox::Item;
use super::receiver::Attached;
use super::statements::check_channel;
use super::Connection;
use crate::error::{Error, ErrorKind, Result};
use crate::queue::pattern::Spec;
use crate::queue::subs::{in_use, Attach};
use crate::queue::{ListenerStat, SubSpec};
use std::time::{Duration, Instant};

/// Longest subscription name, in bytes (as a channel's).
pub const MAX_SUBSCRIPTION_NAME_LEN: usize = crate::layout::MAX_CHANNEL_LEN;

impl Connection {
    /// Creates the durable subscription `name` on `channels` (exact names, or globs with `*`,
    /// `?` and `\` escapes, as Redis' PSUBSCRIBE) if it does not exist, and attaches this session
    /// to it. The subscription keeps its position, channels and settings while no session is
    /// attached, across crashes and restarts of its consumers (not across a reboot, which wipes
    /// the queue). The attached session receives, through [`Connection::notifies`],
    /// [`Connection::wait`] and the descriptor, every notification committed on its channels
    /// since its last acknowledged one, in commit order, then new ones as they commit.
    ///
    /// The channels and settings given replace the stored ones. One session at a time is
    /// attached: a second gets [`ErrorKind::InUse`] (`55006`), or waits up to
    /// [`SubscribeOptions::wait`]. A session that listens cannot subscribe, nor the reverse.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("hark-doc-sub-{}", std::process::id()));
    /// use hark::{AckMode, SubscribeOptions};
    /// let mut app = hark::connect(Some(&dir))?;
    /// let mut worker = hark::connect(Some(&dir))?;
    /// worker.subscribe("mailer", &["orders.*"], &SubscribeOptions::new())?;
    /// worker.close(); // the worker restarts...
    /// app.notify("orders.paid", "42")?; // ...while this commits
    /// let mut worker = hark::connect(Some(&dir))?;
    /// worker.subscribe("mailer", &["orders.*"], &SubscribeOptions::new())?;
    /// let n = worker.notifies()?.unwrap();
    /// assert_eq!((n.channel.as_str(), n.payload.as_str()), ("orders.paid", "42"));
    /// worker.ack(n.position)?; // processed: not delivered again
    /// # drop((app, worker)); std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), hark::Error>(())
    /// ```
    pub fn subscribe(&mut self, name: &str, channels: &[&str], options: &SubscribeOptions) -> Result<()> {
        self.check_usable()?;
        check_name(name)?;
        if channels.is_empty() {
            return Err(Error::invalid("a subscription needs at least one channel or pattern"));
        }
        for c in channels {
            check_channel(c)?;
            if c.contains('\n') {
                return Err(Error::invalid("a subscription's channel names cannot contain a newline"));
            }
        }
        if !self.block.is_idle() || !self.block.txn.is_empty() {
            return Err(Error::new(
                ErrorKind::TransactionState,
                "25001",
                "cannot attach to a subscription inside a transaction block",
            ));
        }
        if let Some(current) = self.subscription() {
            return Err(Error::new(
                ErrorKind::TransactionState,
                "55000",
                format!("this session is attached to subscription \"{current}\" already"),
            )
            .with_hint("Detach first, or use another connection."));
        }
        if self.rx.slot.is_some() {
            return Err(Error::new(ErrorKind::TransactionState, "55000", "cannot subscribe in a session that listens")
                .with_hint("UNLISTEN * first, or subscribe from another connection."));
        }
        let mut unique: Vec<String> = Vec::with_capacity(channels.len());
        for c in channels {
            if !unique.iter().any(|u| u == c) {
                unique.push((*c).to_owned());
            }
        }
        let spec = SubSpec {
            name: name.to_owned(),
            channels: unique,
            auto_ack: options.ack == AckMode::Auto,
            max_lag_bytes: options.max_lag_bytes.unwrap_or(0),
            max_lag_age_ns: options.max_lag_age.map_or(0, |d| d.as_nanos().min(u64::MAX as u128) as u64),
        };
        self.rx.bind()?;
        // A wait too long for a deadline (`Duration::MAX`) waits for as long as it takes.
        let deadline = options.wait.map(|w| Instant::now().checked_add(w));
        let q = self.queue.clone();
        let slot = loop {
            match q.attach(
                self.lock_raw(),
                self.rx.sock_id(),
                self.backend_pid(),
                &spec,
                options.create.unwrap_or(true),
            )? {
                Attach::Done(i, _created) => break i,
                Attach::Busy(pid) => match deadline {
                    Some(d) if d.map_or(true, |d| Instant::now() < d) => std::thread::sleep(Duration::from_millis(20)),
                    _ => return Err(in_use(name, pid)),
                },
            }
        };
        self.rx.channel_set.clear();
        self.rx.patterns.clear();
        for s in spec.specs() {
            match s {
                Spec::Exact(c) => {
                    self.rx.channel_set.insert(c);
                }
                glob => self.rx.patterns.push(glob),
            }
        }
        let cursor = q.slot_floor(slot);
        self.rx.attach(slot, Attached::new(spec.name, spec.auto_ack, cursor));
        Ok(())
    }

    /// The subscription this session is attached to.
    pub fn subscription(&self) -> Option<&str> {
        self.rx.sub.as_ref().map(|s| s.name.as_str())
    }

    /// Acknowledges the notification at `position` ([`crate::Notification::position`]) and
    /// every one before it: a later attach does not receive them again. Positions already
    /// acknowledged are accepted; a position that is not one of the notifications this session
    /// received is an error (`22023`).
    pub fn ack(&mut self, position: u64) -> Result<()> {
        self.check_usable()?;
        let (Some(i), Some(sub)) = (self.rx.slot, &mut self.rx.sub) else {
            return Err(Error::new(
                ErrorKind::TransactionState,
                "55000",
                "this session is not attached to a subscription",
            ));
        };
        let q = self.queue.clone();
        let Ok(k) = sub.unacked.binary_search_by_key(&position, |e| e.0) else {
            if position < q.slot_floor(i) {
                return Ok(()); // acknowledged already (or cut past)
            }
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "22023",
                format!("position {position} is not a notification this session received"),
            ));
        };
        let end = sub.unacked[k].1;
        sub.acknowledge(&q, i, k + 1, end)
    }

    /// Ends this session's attachment: the subscription stays, at its acknowledged position, and
    /// what was received but not acknowledged is delivered again at the next attach.
    pub fn detach(&mut self) -> Result<()> {
        self.check_usable()?;
        self.detach_quietly();
        Ok(())
    }

    pub(crate) fn detach_quietly(&mut self) {
        if let (Some(i), Some(_)) = (self.rx.slot, &self.rx.sub) {
            self.queue.detach(i, self.lock_raw());
            self.rx.detach();
        }
    }

    /// Drops the durable subscription `name` (`42704` if there is none), unless another session
    /// is attached to it (`55006`). This session's own attachment is ended first.
    pub fn unsubscribe(&mut self, name: &str) -> Result<()> {
        self.check_usable()?;
        check_name(name)?;
        if self.subscription() == Some(name) {
            self.detach_quietly();
        }
        self.queue.drop_subscription(self.lock_raw(), name)
    }

    /// The queue's durable subscriptions, with their positions and lag.
    pub fn subscriptions(&self) -> Result<Vec<ListenerStat>> {
        self.check_usable()?;
        Ok(self.queue.stats()?.listeners.into_iter().filter(|l| l.subscription.is_some()).collect())
    }

    /// The next notification or gap, or `None` (never blocks): the same sequence as
    /// [`Connection::notifies`], with a gap as a value rather than an error.
    pub fn next_event(&mut self) -> Result<Option<Event>> {
        self.check_usable()?;
        self.flush_notices_pub();
        Ok(match self.rx.next(self.block.is_idle())? {
            None => None,
            Some(Item::Notification(n)) => Some(Event::Notification(n.to_owned())),
            Some(Item::Gap(g)) => Some(Event::Gap(g)),
        })
    }
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid("subscription name cannot be empty"));
    }
    if name.len() > MAX_SUBSCRIPTION_NAME_LEN {
        return Err(Error::invalid(format!("subscription name too long (at most {MAX_SUBSCRIPTION_NAME_LEN} bytes)")));
    }
    if name.bytes().any(|b| b == 0 || b == b'\n') {
        return Err(Error::invalid("subscription name cannot contain NUL or newline"));
    }
    Ok(())
}
