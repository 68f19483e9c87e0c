//! `Poller`: the I/O multiplexer of one loop, as muduo's `Poller`/`EPollPoller`.
//!
//! muduo's poller keeps a map from fd to `Channel*` and fills the loop's
//! `activeChannels_` on each `poll`. Here `mio::Poll` plays epoll, the map is
//! a `Slab` indexed by `mio::Token`, and `poll` fills a list of
//! [`ActiveEvent`]s (token plus [`Ready`] bits), muduo's active channels.
//!
//! muduo's channel states `kNew`/`kAdded`/`kDeleted` become mio's
//! `register`/`reregister`/`deregister`. mio has no empty interest, so
//! muduo's `disableAll()` is [`Poller::remove_channel`].
//!
//! While the loop dispatches an event it *takes* the channel out of its slot
//! and puts it back afterwards, so the handler can get `&mut EventLoop`
//! (and through it this poller) without aliasing itself. A generation number
//! per slot tells whether the handler removed its channel in the meantime,
//! even if a new channel has reused the token.
//!
//! Thread affinity: owned by one `EventLoop`, used only on its thread.

use std::io;
use std::time::{Duration, Instant};

use mio::{event::Source, Events, Interest, Poll, Registry, Token};
use slab::Slab;

use crate::channel::{Channel, ChannelHandler, Ready};

/// The token of the loop's `mio::Waker`. Channel tokens are slab indices,
/// which never reach it.
pub(crate) const WAKER_TOKEN: Token = Token(usize::MAX);

/// How many events one `poll` call returns at most.
const EVENTS_CAPACITY: usize = 1024;

/// One ready source, as returned by [`Poller::poll`].
#[derive(Debug, Clone, Copy)]
pub struct ActiveEvent {
    /// The channel's token.
    pub token: Token,
    /// What happened.
    pub ready: Ready,
}

struct Slot {
    generation: u64,
    /// `None` while the loop is dispatching an event to this channel.
    channel: Option<Channel>,
}

/// A channel lent to the loop for one dispatch; give it back with
/// [`Poller::restore_channel`].
pub(crate) struct Taken {
    pub(crate) channel: Channel,
    generation: u64,
}

/// The multiplexer and the channels registered with it.
pub struct Poller {
    poll: Poll,
    events: Events,
    channels: Slab<Slot>,
    next_generation: u64,
}

impl Poller {
    /// A poller with its own `mio::Poll` (one epoll instance).
    pub fn new() -> io::Result<Self> {
        Ok(Poller {
            poll: Poll::new()?,
            events: Events::with_capacity(EVENTS_CAPACITY),
            channels: Slab::new(),
            next_generation: 0,
        })
    }

    /// The registry, for creating the loop's `mio::Waker`.
    pub(crate) fn registry(&self) -> &Registry {
        self.poll.registry()
    }

    /// Waits up to `timeout` (forever if `None`) and appends the ready
    /// sources to `active`. Returns when the poll returned, muduo's
    /// `pollReturnTime_`. An interrupted wait returns with no events.
    pub fn poll(
        &mut self,
        timeout: Option<Duration>,
        active: &mut Vec<ActiveEvent>,
    ) -> io::Result<Instant> {
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        let now = Instant::now();
        active.extend(self.events.iter().map(|e| ActiveEvent {
            token: e.token(),
            ready: Ready::from_event(e),
        }));
        Ok(now)
    }

    /// Registers `source` for `interest` and stores its handler; returns the
    /// new channel's token.
    pub fn add_channel<S: Source + ?Sized>(
        &mut self,
        source: &mut S,
        interest: Interest,
        handler: Box<dyn ChannelHandler>,
    ) -> io::Result<Token> {
        let entry = self.channels.vacant_entry();
        let token = Token(entry.key());
        self.poll.registry().register(source, token, interest)?;
        self.next_generation += 1;
        entry.insert(Slot {
            generation: self.next_generation,
            channel: Some(Channel::new(token, interest, handler)),
        });
        Ok(token)
    }

    /// Changes the events a registered source is watched for.
    pub fn update_channel<S: Source + ?Sized>(
        &mut self,
        source: &mut S,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        self.poll.registry().reregister(source, token, interest)?;
        if let Some(ch) = self
            .channels
            .get_mut(token.0)
            .and_then(|s| s.channel.as_mut())
        {
            ch.set_interest(interest);
        }
        Ok(())
    }

    /// Deregisters `source` and forgets its channel. The handler is dropped
    /// now, or after its current dispatch if it is the one calling.
    pub fn remove_channel<S: Source + ?Sized>(&mut self, source: &mut S, token: Token) {
        if let Err(e) = self.poll.registry().deregister(source) {
            log::warn!("deregister {:?}: {}", token, e);
        }
        if self.channels.contains(token.0) {
            self.channels.remove(token.0);
        }
    }

    /// `true` while a channel is registered under `token`.
    pub fn has_channel(&self, token: Token) -> bool {
        self.channels.contains(token.0)
    }

    /// Number of registered channels.
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    pub(crate) fn take_channel(&mut self, token: Token) -> Option<Taken> {
        let slot = self.channels.get_mut(token.0)?;
        let channel = slot.channel.take()?;
        Some(Taken {
            channel,
            generation: slot.generation,
        })
    }

    pub(crate) fn restore_channel(&mut self, taken: Taken) {
        let token = taken.channel.token();
        if let Some(slot) = self.channels.get_mut(token.0) {
            if slot.generation == taken.generation && slot.channel.is_none() {
                slot.channel = Some(taken.channel);
            }
        }
        // Otherwise the handler removed its channel while it ran: drop it.
    }
}
