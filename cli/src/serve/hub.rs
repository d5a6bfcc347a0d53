//! What the server shares between its listening thread and its clients: the clients' bounded
//! queues, the counters, the ring of recent notifications shown to a page when it opens, the
//! channels listened on, and the channels a page asked to add.

use serde::Serialize;
use serde_json::value::RawValue;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

/// The most bytes of notifications kept for pages that open later, whatever `--history` says.
const HISTORY_BYTES: usize = 8 << 20;
/// How many positions are remembered to show a notification once (a listener and a pattern's
/// subscription receive one in much the same time).
const RECENT: usize = 4096;

/// One message for clients: the dashboard's JSON text, and for a notification its payload as
/// sent (what a plain WebSocket client gets).
pub struct Item {
    pub json: Box<RawValue>,
    pub payload: Option<String>,
}

impl Item {
    pub fn control(value: &impl Serialize) -> Arc<Item> {
        let text = serde_json::to_string(value).expect("JSON of a plain struct");
        Arc::new(Item { json: RawValue::from_string(text).expect("JSON just written"), payload: None })
    }
}

/// A notification as the dashboard's WebSocket and Server-Sent Events carry it.
#[derive(Serialize)]
pub struct NotificationMessage<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub seq: u64,
    pub channel: &'a str,
    pub payload: &'a str,
    pub pid: i32,
    /// When its transaction committed, in milliseconds since the Unix epoch.
    pub commit_time: u64,
    /// When the server received it, in milliseconds since the Unix epoch.
    pub received: u64,
}

#[derive(Serialize)]
struct Hello<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    channels: &'a [String],
    counts: &'a BTreeMap<String, u64>,
    queue: &'a str,
    /// Whether the page may add channels.
    can_listen: bool,
    /// Recent notifications, oldest first.
    history: Vec<&'a RawValue>,
}

/// The channels listened on, sent to every page when one is added.
#[derive(Serialize)]
pub struct Channels<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub channels: &'a [String],
}

struct Client {
    tx: SyncSender<Arc<Item>>,
    /// Set when the client's queue overflowed: it is to be closed with a reason.
    overrun: Arc<AtomicBool>,
    /// Set by the client's own thread when its connection ended.
    gone: Arc<AtomicBool>,
}

/// A client's side of its registration: its queue, the two flags it shares with the hub, and the
/// first message to send (the hello with the history), taken at the same instant as it joined,
/// so that no notification is missed or shown twice.
pub struct Membership {
    pub rx: Receiver<Arc<Item>>,
    pub overrun: Arc<AtomicBool>,
    pub gone: Arc<AtomicBool>,
    pub hello: String,
}

/// A page's request to listen on one more channel, answered by the listening thread.
pub struct ListenRequest {
    pub channel: String,
    pub reply: SyncSender<Result<(), String>>,
}

struct State {
    clients: Vec<Client>,
    /// Notifications received per channel, for the dashboard's counters on (re)connection.
    counts: BTreeMap<String, u64>,
    channels: Vec<String>,
    history: VecDeque<Arc<Item>>,
    history_bytes: usize,
    seq: u64,
    /// Queue positions of the last notifications, so that one received both as a listener and
    /// through a pattern's subscription is shown once.
    recent: VecDeque<u64>,
}

pub struct Hub {
    state: Mutex<State>,
    pub requests: Mutex<Vec<ListenRequest>>,
    queue: String,
    client_queue: usize,
    max_clients: usize,
    history: usize,
    can_listen: bool,
}

impl Hub {
    pub fn new(
        queue: String,
        channels: Vec<String>,
        client_queue: usize,
        max_clients: usize,
        history: usize,
        can_listen: bool,
    ) -> Hub {
        let state = State {
            clients: Vec::new(),
            counts: channels.iter().map(|c| (c.clone(), 0)).collect(),
            channels,
            history: VecDeque::new(),
            history_bytes: 0,
            seq: 0,
            recent: VecDeque::new(),
        };
        Hub {
            state: Mutex::new(state),
            requests: Mutex::new(Vec::new()),
            queue,
            client_queue,
            max_clients,
            history,
            can_listen,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn can_listen(&self) -> bool {
        self.can_listen
    }

    pub fn channels(&self) -> Vec<String> {
        self.state().channels.clone()
    }

    /// Counts, numbers and keeps one notification, then queues it for every client.
    pub fn notification(&self, channel: &str, payload: &str, pid: i32, committed: SystemTime, position: u64) {
        let ms = |t: SystemTime| t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        let (commit_time, received) = (ms(committed), ms(SystemTime::now()));
        let mut st = self.state();
        if st.recent.contains(&position) {
            return;
        }
        if st.recent.len() >= RECENT {
            st.recent.pop_front();
        }
        st.recent.push_back(position);
        st.seq += 1;
        // The served channels are counted from the start: a key is copied only for another.
        match st.counts.get_mut(channel) {
            Some(c) => *c += 1,
            None => {
                st.counts.insert(channel.to_owned(), 1);
            }
        }
        let msg =
            NotificationMessage { kind: "notification", seq: st.seq, channel, payload, pid, commit_time, received };
        let text = serde_json::to_string(&msg).expect("JSON of a notification");
        let item = Arc::new(Item {
            json: RawValue::from_string(text).expect("JSON just written"),
            payload: Some(payload.to_owned()),
        });
        if self.history > 0 {
            st.history_bytes += item.json.get().len();
            st.history.push_back(Arc::clone(&item));
            while st.history.len() > self.history || st.history_bytes > HISTORY_BYTES {
                let old = st.history.pop_front().expect("a kept notification");
                st.history_bytes -= old.json.get().len();
            }
        }
        Self::broadcast_locked(&mut st, item);
    }

    /// Records a channel added from a page, and tells every page.
    pub fn add_channel(&self, channel: &str) {
        let mut st = self.state();
        if !st.channels.iter().any(|c| c == channel) {
            st.channels.push(channel.to_owned());
            st.counts.entry(channel.to_owned()).or_insert(0);
        }
        let item = Item::control(&Channels { kind: "channels", channels: &st.channels });
        Self::broadcast_locked(&mut st, item);
    }

    /// Queues `item` for every client without blocking; drops the ones that are full or gone.
    fn broadcast_locked(st: &mut State, item: Arc<Item>) {
        st.clients.retain(|c| {
            if c.gone.load(Ordering::SeqCst) {
                return false;
            }
            match c.tx.try_send(Arc::clone(&item)) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    c.overrun.store(true, Ordering::SeqCst);
                    false
                }
                Err(TrySendError::Disconnected(_)) => false,
            }
        });
    }

    /// Registers a client; `None` when `max_clients` are already served.
    pub fn join(&self) -> Option<Membership> {
        let mut st = self.state();
        st.clients.retain(|c| !c.gone.load(Ordering::SeqCst));
        if st.clients.len() >= self.max_clients {
            return None;
        }
        let hello = Hello {
            kind: "hello",
            channels: &st.channels,
            counts: &st.counts,
            queue: &self.queue,
            can_listen: self.can_listen,
            history: st.history.iter().map(|i| &*i.json).collect(),
        };
        let hello = serde_json::to_string(&hello).expect("JSON of the hello");
        let (tx, rx) = sync_channel(self.client_queue);
        let overrun = Arc::new(AtomicBool::new(false));
        let gone = Arc::new(AtomicBool::new(false));
        st.clients.push(Client { tx, overrun: Arc::clone(&overrun), gone: Arc::clone(&gone) });
        Some(Membership { rx, overrun, gone, hello })
    }

    pub fn too_slow_reason(&self) -> String {
        format!("too slow: more than {} notifications waiting; reconnect to resume", self.client_queue)
    }
}
