//! Tests of the RST numbers and the pacing, with a controlled clock.
use super::*;
use crate::rules::{RuleKey, RuleSpec, RuleTable};
use crate::wire::{Flags, L2};

fn seg(flags: Flags, seq: u32, ack: u32, len: u32) -> Segment {
    Segment {
        l2: L2 {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            vlans: [0, 0],
        },
        src: "10.77.0.1".parse().unwrap(),
        dst: "10.77.0.2".parse().unwrap(),
        src_port: 40000,
        dst_port: 5001,
        seq,
        ack,
        flags,
        window: 502,
        payload_len: len,
    }
}

#[test]
fn data_segment_gives_exact_numbers_both_ways() {
    let [r, s] = rsts_for(&seg(Flags::ACK | Flags::PSH, 1000, 7000, 5));
    assert_eq!(
        (r.src_port, r.dst_port, r.seq, r.ack),
        (40000, 5001, 1005, Some(7000))
    );
    assert_eq!(r.dst, "10.77.0.2".parse::<IpAddr>().unwrap());
    assert_eq!(
        (s.src_port, s.dst_port, s.seq, s.ack),
        (5001, 40000, 7000, Some(1005))
    );
    assert_eq!(s.dst, "10.77.0.1".parse::<IpAddr>().unwrap());
}

#[test]
fn syn_and_fin_take_one_sequence_number() {
    // A bare SYN: the listener gets a bare RST at isn+1, the client a RST+ACK acking the SYN.
    let [r, s] = rsts_for(&seg(Flags::SYN, 500, 0, 0));
    assert_eq!((r.seq, r.ack), (501, None));
    assert_eq!((s.seq, s.ack), (0, Some(501)));
    // SYN-ACK: the client (receiver) must see its own isn+1 acknowledged.
    let [r, s] = rsts_for(&seg(Flags::SYN | Flags::ACK, 900, 501, 0));
    assert_eq!((r.seq, r.ack), (901, Some(501)));
    assert_eq!((s.seq, s.ack), (501, Some(901)));
    let [r, _] = rsts_for(&seg(Flags::FIN | Flags::ACK, 10, 20, 3));
    assert_eq!(r.seq, 14);
}

#[test]
fn numbers_wrap_around_2_pow_32() {
    let [r, s] = rsts_for(&seg(Flags::ACK, u32::MAX - 1, u32::MAX, 10));
    assert_eq!(r.seq, 8);
    assert_eq!(s.seq, u32::MAX);
    assert_eq!(s.ack, Some(8));
    let [r, _] = rsts_for(&seg(Flags::SYN, u32::MAX, 0, 0));
    assert_eq!(r.seq, 0);
}

struct Fixture {
    table: RuleTable,
    pacer: Pacer,
    out: Vec<Outgoing>,
}

const T0: Instant = Instant::from_secs(100);

impl Fixture {
    fn new() -> Self {
        let mut table = RuleTable::new();
        table.upsert(
            RuleSpec {
                key: RuleKey {
                    engid: "e".into(),
                    host: "10.77.0.1".parse().unwrap(),
                    port: None,
                },
                sniff_if: "eth1".into(),
                reset_if: "eth0".into(),
                duration: Duration::from_secs(60),
            },
            T0,
        );
        Fixture {
            table,
            pacer: Pacer::default(),
            out: Vec::new(),
        }
    }

    fn feed(&mut self, s: &Segment, now: Instant) -> Vec<(IpAddr, u32)> {
        let m = self.table.matcher(None);
        let hit = m.lookup(s, now).expect("matches");
        self.out.clear();
        self.pacer.on_segment(s, hit, now, &mut self.out);
        self.drain()
    }

    fn poll(&mut self, now: Instant) -> Vec<(IpAddr, u32)> {
        self.out.clear();
        self.pacer.poll(now, &mut self.out);
        self.drain()
    }

    fn drain(&mut self) -> Vec<(IpAddr, u32)> {
        self.out
            .iter()
            .map(|o| (o.forged.dst, o.forged.seq))
            .collect()
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn never_answers_a_rst() {
    let mut f = Fixture::new();
    assert!(f.feed(&seg(Flags::RST, 1, 0, 0), T0).is_empty());
    assert!(f
        .feed(&seg(Flags::RST | Flags::ACK, 1, 2, 0), T0)
        .is_empty());
    assert_eq!(f.pacer.tracked_ends(), 0);
}

#[test]
fn bulk_burst_costs_few_rsts_and_the_last_number_wins() {
    let mut f = Fixture::new();
    let srv: IpAddr = "10.77.0.2".parse().unwrap();
    let cli: IpAddr = "10.77.0.1".parse().unwrap();
    // First data segment: one RST each way at once.
    let first = f.feed(&seg(Flags::ACK, 0, 77, 1448), T0);
    assert_eq!(first, vec![(srv, 1448), (cli, 77)]);
    // 50 more segments within the pace interval: nothing at once, the sender's number repeats.
    for i in 1..=50u32 {
        let now = T0 + Duration::from_micros(u64::from(i) * 10);
        assert!(f.feed(&seg(Flags::ACK, i * 1448, 77, 1448), now).is_empty());
    }
    assert_eq!(f.pacer.next_deadline(), Some(T0 + PACE));
    assert!(f.poll(T0 + PACE - Duration::from_micros(1)).is_empty());
    // At the deadline, only the freshest number toward the receiver goes out.
    assert_eq!(f.poll(T0 + PACE), vec![(srv, 51 * 1448)]);
    assert!(f.poll(T0 + CHECK - ms(1)).is_empty());
    assert_eq!(f.pacer.checks(), 0);
}

#[test]
fn an_end_is_probed_after_its_rsts_until_it_answers_no_more() {
    let mut f = Fixture::new();
    let srv: IpAddr = "10.77.0.2".parse().unwrap();
    let cli: IpAddr = "10.77.0.1".parse().unwrap();
    // The last data of a bulk sender: the RST toward the receiver may have come too early.
    assert_eq!(
        f.feed(&seg(Flags::ACK, 0, 77, 1448), T0),
        vec![(srv, 1448), (cli, 77)]
    );
    assert!(f.poll(T0 + CHECK - Duration::from_micros(1)).is_empty());
    // CHECK later, both ends get a probe outside their window, from their peer.
    let probes = f.poll(T0 + CHECK);
    assert_eq!(probes, vec![(srv, 1448 + (1 << 30)), (cli, 77 + (1 << 30))]);
    assert!(f.out.iter().all(|o| o.forged.kind == Kind::Probe));
    assert_eq!(f.out[0].forged.src, cli);
    assert_eq!(f.out[0].forged.ack, Some(77));
    assert_eq!(f.pacer.checks(), 2);
    // The receiver is alive and answers with its numbers: 1448 is its rcv_nxt, the number sent
    // CHECK ago, and it goes out again (CHECK is not shorter than RETRY).
    let mut answer = seg(Flags::ACK, 77, 1448, 0);
    std::mem::swap(&mut answer.src, &mut answer.dst);
    std::mem::swap(&mut answer.src_port, &mut answer.dst_port);
    let t1 = T0 + CHECK + Duration::from_micros(40);
    assert_eq!(f.feed(&answer, t1), vec![(cli, 77), (srv, 1448)]);
    assert!(f.out.iter().all(|o| o.forged.kind == Kind::Rst));
    // Checked again after those RSTs, and so on while it answers: MAX_CHECKS probes at most.
    let mut t = t1;
    let mut to_srv = 1;
    for _ in 0..10 {
        t = t + CHECK;
        f.poll(t);
        if !f.out.iter().any(|o| o.forged.dst == srv) {
            continue;
        }
        to_srv += 1;
        t = t + Duration::from_micros(40);
        assert!(!f.feed(&answer, t).is_empty());
    }
    assert_eq!(to_srv, usize::from(MAX_CHECKS));
    f.poll(t + CHECK * 10);
    assert_eq!(f.pacer.next_deadline(), None);
}

#[test]
fn a_handshake_is_not_probed() {
    let mut f = Fixture::new();
    assert_eq!(f.feed(&seg(Flags::SYN, 500, 0, 0), T0).len(), 2);
    assert!(f.poll(T0 + CHECK * 10).is_empty());
    assert_eq!(f.pacer.checks(), 0);
}

#[test]
fn no_probe_outlives_its_rule() {
    let mut f = Fixture::new();
    let expiry = T0 + Duration::from_secs(60);
    assert_eq!(f.feed(&seg(Flags::ACK, 0, 77, 1), expiry - ms(10)).len(), 2);
    assert!(f.poll(expiry - ms(10) + CHECK).is_empty());
    assert_eq!(f.pacer.checks(), 0);
}

#[test]
fn held_back_rsts_die_with_their_rule() {
    let mut f = Fixture::new();
    let expiry = T0 + Duration::from_secs(60);
    let start = expiry - Duration::from_micros(500);
    assert_eq!(f.feed(&seg(Flags::ACK, 0, 77, 100), start).len(), 2);
    // Within the pace interval: held back, due after the rule's deadline.
    assert!(f
        .feed(
            &seg(Flags::ACK, 100, 77, 100),
            start + Duration::from_micros(100)
        )
        .is_empty());
    assert!(f.poll(start + PACE).is_empty());
}

#[test]
fn same_number_is_retried_only_after_retry() {
    let mut f = Fixture::new();
    let s = seg(Flags::ACK, 10, 20, 0);
    assert_eq!(f.feed(&s, T0).len(), 2);
    assert!(f.feed(&s, T0 + ms(10)).is_empty());
    assert!(f.poll(T0 + ms(20)).is_empty());
    assert_eq!(f.feed(&s, T0 + RETRY).len(), 2);
}

#[test]
fn chat_every_message_is_answered_exactly() {
    let mut f = Fixture::new();
    let cli: IpAddr = "10.77.0.1".parse().unwrap();
    let srv: IpAddr = "10.77.0.2".parse().unwrap();
    assert_eq!(
        f.feed(&seg(Flags::ACK | Flags::PSH, 100, 900, 1), T0),
        vec![(srv, 101), (cli, 900)]
    );
    // The server's byte crossed our RSTs: a fresh number toward the client goes out at once;
    // toward the server it is the number already sent, not repeated within RETRY.
    let mut reply = seg(Flags::ACK | Flags::PSH, 900, 101, 1);
    std::mem::swap(&mut reply.src, &mut reply.dst);
    std::mem::swap(&mut reply.src_port, &mut reply.dst_port);
    assert_eq!(f.feed(&reply, T0 + ms(10)), vec![(cli, 901)]);
}

#[test]
fn each_end_has_a_budget() {
    let mut f = Fixture::new();
    f.pacer = Pacer::new(3);
    let mut sent = 0;
    for i in 0..20u32 {
        let now = T0 + ms(u64::from(i) * 2);
        sent += f
            .feed(&seg(Flags::ACK, i * 100, 77 + i * 10, 100), now)
            .len();
    }
    assert_eq!(sent, 6, "3 toward each end");
    assert!(f.pacer.over_budget() > 0);
    let first: Vec<bool> = {
        let mut g = Fixture::new();
        let m = g.table.matcher(None);
        let s = seg(Flags::ACK, 0, 77, 1);
        g.pacer
            .on_segment(&s, m.lookup(&s, T0).unwrap(), T0, &mut g.out);
        let s = seg(Flags::ACK, 1, 78, 1);
        g.pacer.on_segment(
            &s,
            m.lookup(&s, T0 + ms(5)).unwrap(),
            T0 + ms(5),
            &mut g.out,
        );
        g.out.iter().map(|o| o.first).collect()
    };
    assert_eq!(first, vec![true, true, false, false]);
}

#[test]
fn idle_ends_are_forgotten() {
    let mut f = Fixture::new();
    f.feed(&seg(Flags::ACK, 10, 20, 5), T0);
    assert_eq!(f.pacer.tracked_ends(), 2);
    f.poll(T0 + END_IDLE + ms(1));
    assert_eq!(f.pacer.tracked_ends(), 0);
}
