//! Role gating as a pure state machine: whether a message is acted on, let go or held, and what a connect or a new role asks for.
//!
//! Only the leading hub acts: a standby lets messages go (the leader
//! receives its own copies), and a hub that does not know its role yet
//! (its database is unreachable) holds them unacknowledged until it does.
//! Like rumqttc's `MqttState`, this only keeps the books and says what to
//! do; the core task does the I/O (subscribing, publishing, acknowledging).

use std::collections::VecDeque;

use crate::model::role::Role;

/// Messages held while the role is undecided. The broker's inflight window
/// keeps QoS 1 far below this; beyond it they are let go (and counted).
pub const HELD_CAPACITY: usize = 4096;

/// What to do with one message.
#[derive(Debug, PartialEq, Eq)]
pub enum Gated<M> {
    /// The hub leads: decide it.
    Act(M),
    /// Another hub leads: acknowledge it without acting.
    LetGo(M),
    /// The role is unknown: kept until it is.
    Held,
    /// The role is unknown and the held queue is full: let go, and say so.
    Overflow(M),
}

/// What a (re)connect asks of the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnConnect {
    /// Send the subscriptions: a new session has none.
    pub subscribe: bool,
    /// Publish the hello (availability, clock, retained states).
    pub take_the_stage: bool,
}

/// What a new role asks of the core, in this order.
#[derive(Debug, PartialEq, Eq)]
pub struct OnRole<M> {
    /// Became leader: reload the house the database holds (a standby's
    /// picture came from polling it) before acting on anything.
    pub reload: bool,
    /// Became leader while connected: publish the hello.
    pub take_the_stage: bool,
    /// Held messages to decide, oldest first.
    pub act: Vec<M>,
    /// Held messages to acknowledge without acting, oldest first.
    pub let_go: Vec<M>,
}

/// The books the core keeps about its connection and held messages.
#[derive(Debug)]
pub struct Gate<M> {
    connected: bool,
    /// Whether the broker holds our subscriptions on this connection.
    subscribed: bool,
    held: VecDeque<M>,
}

impl<M> Default for Gate<M> {
    fn default() -> Self {
        Self {
            connected: false,
            subscribed: false,
            held: VecDeque::new(),
        }
    }
}

impl<M> Gate<M> {
    pub fn connected(&self) -> bool {
        self.connected
    }

    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// A CONNACK. A session the broker kept still carries our
    /// subscriptions: every new session subscribes at once, whatever the
    /// role (a standby lets messages go), and a hub never unsubscribes.
    /// Subscribing again would make rumqttd restart the filter where it
    /// is, skipping what it held for us. Held messages came on the old
    /// connection: the broker sends them again.
    pub fn on_connected(&mut self, session_present: bool, role: Role) -> OnConnect {
        self.connected = true;
        self.subscribed = session_present;
        self.held.clear();
        OnConnect {
            subscribe: !self.subscribed,
            take_the_stage: role == Role::Leader,
        }
    }

    /// The subscribe request went out; `subscribe_needed` is false until
    /// the next new session.
    pub fn subscribe_sent(&mut self) {
        self.subscribed = true;
    }

    /// Whether this session still lacks our subscriptions.
    pub fn subscribe_needed(&self) -> bool {
        !self.subscribed
    }

    pub fn on_disconnected(&mut self) {
        self.connected = false;
    }

    /// The role changed to `role`.
    pub fn on_role(&mut self, role: Role) -> OnRole<M> {
        let mut steps = OnRole {
            reload: false,
            take_the_stage: false,
            act: Vec::new(),
            let_go: Vec::new(),
        };
        match role {
            Role::Leader => {
                steps.reload = true;
                steps.take_the_stage = self.connected;
                steps.act = self.held.drain(..).collect();
            }
            // Another hub leads and receives these itself.
            Role::Standby => steps.let_go = self.held.drain(..).collect(),
            Role::Undecided => {}
        }
        steps
    }

    /// A message arrived while the hub's role is `role`.
    pub fn on_message(&mut self, message: M, role: Role) -> Gated<M> {
        match role {
            Role::Leader => Gated::Act(message),
            Role::Standby => Gated::LetGo(message),
            Role::Undecided if self.held.len() < HELD_CAPACITY => {
                self.held.push_back(message);
                Gated::Held
            }
            Role::Undecided => Gated::Overflow(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_acts_a_standby_lets_go() {
        let mut gate = Gate::default();
        assert_eq!(gate.on_message(1, Role::Leader), Gated::Act(1));
        assert_eq!(gate.on_message(2, Role::Standby), Gated::LetGo(2));
        assert_eq!(gate.held(), 0);
    }

    #[test]
    fn undecided_holds_until_the_role_is_known_then_acts_in_order() {
        let mut gate = Gate::default();
        let connect = gate.on_connected(false, Role::Undecided);
        assert_eq!(
            connect,
            OnConnect {
                subscribe: true,
                take_the_stage: false
            }
        );
        for m in 1..=3 {
            assert_eq!(gate.on_message(m, Role::Undecided), Gated::Held);
        }
        let steps = gate.on_role(Role::Leader);
        assert_eq!(
            steps,
            OnRole {
                reload: true,
                take_the_stage: true,
                act: vec![1, 2, 3],
                let_go: Vec::new()
            }
        );
        assert_eq!(gate.held(), 0);
    }

    #[test]
    fn undecided_then_standby_lets_the_held_go() {
        let mut gate = Gate::default();
        gate.on_message("a", Role::Undecided);
        let steps = gate.on_role(Role::Standby);
        assert_eq!(steps.let_go, vec!["a"], "{steps:?}");
        assert!(!steps.reload && !steps.take_the_stage, "{steps:?}");
    }

    #[test]
    fn a_full_hold_overflows() {
        let mut gate = Gate::default();
        for m in 0..HELD_CAPACITY {
            assert_eq!(gate.on_message(m, Role::Undecided), Gated::Held);
        }
        assert_eq!(
            gate.on_message(HELD_CAPACITY, Role::Undecided),
            Gated::Overflow(HELD_CAPACITY)
        );
        assert_eq!(gate.held(), HELD_CAPACITY);
    }

    #[test]
    fn a_reconnect_drops_the_held_the_broker_resends_them() {
        let mut gate = Gate::default();
        gate.on_message(1, Role::Undecided);
        gate.on_disconnected();
        assert!(!gate.connected());
        gate.on_connected(true, Role::Undecided);
        assert_eq!(gate.held(), 0);
        assert_eq!(gate.on_role(Role::Leader).act, Vec::<i32>::new());
    }

    #[test]
    fn a_kept_session_is_not_subscribed_again_a_new_one_once() {
        let mut gate: Gate<()> = Gate::default();
        let kept = gate.on_connected(true, Role::Leader);
        assert!(!kept.subscribe && kept.take_the_stage, "{kept:?}");
        let fresh = gate.on_connected(false, Role::Leader);
        assert!(fresh.subscribe, "{fresh:?}");
        gate.subscribe_sent();
        assert!(!gate.subscribe_needed());
    }

    #[test]
    fn becoming_leader_while_disconnected_reloads_but_does_not_take_the_stage() {
        let mut gate: Gate<()> = Gate::default();
        let steps = gate.on_role(Role::Leader);
        assert!(steps.reload && !steps.take_the_stage, "{steps:?}");
    }
}
