//! How the client shows rules, stats and resets: aligned tables for people, JSON for scripts.
use tcpreset::proto::{RuleResets, RuleView, StatsView};

pub fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).expect("serializes")
}

fn when(unix: f64) -> String {
    chrono::DateTime::from_timestamp_micros((unix * 1e6) as i64)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

/// The note a success line carries when the rule's sniff interface was captured too briefly to
/// know every open connection: since `since_unix`, as of `now_unix` (the time of day alone on
/// the same UTC day).
pub fn captured_since_note(sniff_if: &str, since_unix: f64, now_unix: f64) -> String {
    let at = |unix: f64| chrono::DateTime::from_timestamp_micros((unix * 1e6) as i64);
    let (Some(since), Some(now)) = (at(since_unix), at(now_unix)) else {
        return String::new();
    };
    let format = if since.date_naive() == now.date_naive() {
        "%H:%M:%S"
    } else {
        "%Y-%m-%d %H:%M:%S UTC"
    };
    format!(
        "; note: {sniff_if} was captured only from {}; connections silent since before then die when they next send",
        since.format(format)
    )
}

/// One line about a rule.
pub fn describe(rule: &RuleView) -> String {
    let port = rule
        .port
        .map_or("all ports".to_owned(), |p| format!("port {p}"));
    format!(
        "engid {} host {} ({port}) sniffing {} resetting via {}, expires {} (in {:.0} s)",
        rule.engid,
        rule.host,
        rule.sniff_if,
        rule.reset_if,
        when(rule.expires_unix),
        rule.seconds_left
    )
}

/// Left-aligned columns separated by two spaces.
fn table<const N: usize>(head: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths = head.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: [&str; N]| {
        let parts: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        parts.join("  ").trim_end().to_owned()
    };
    let mut out = vec![line(head)];
    out.extend(rows.iter().map(|r| line(r.each_ref().map(String::as_str))));
    out.join("\n")
}

pub fn rules(rules: &[RuleView]) -> String {
    if rules.is_empty() {
        return "no active resets".into();
    }
    let rows: Vec<[String; 8]> = rules
        .iter()
        .map(|r| {
            [
                r.engid.clone(),
                r.host.clone(),
                r.port.map_or("*".into(), |p| p.to_string()),
                r.sniff_if.clone(),
                r.reset_if.clone(),
                format!("{:.0}", r.seconds_left),
                r.segments_matched.to_string(),
                r.rsts_sent.to_string(),
            ]
        })
        .collect();
    let mut out = table(
        [
            "ENGID", "HOST", "PORT", "SNIFF", "RESET", "LEFT(s)", "MATCHED", "RSTS",
        ],
        &rows,
    );
    for r in rules {
        if let Some(why) = &r.suspended {
            out.push_str(&format!("\nrule {} host {} {why}", r.engid, r.host));
        }
    }
    out
}

pub fn stats(s: &StatsView) -> String {
    let c = &s.caps;
    let mut out = format!(
        "uptime {:.0} s, {} rules active, {} RSTs sent, {} probes sent, {} connection ends reset\n\
         caps hit: rate {} | per-connection budget {} | protected peers {} | refused: max_rules {}, max_seconds {}, protected {}, unauthorized {}, interface {}\n",
        s.uptime_secs, s.rules_active, s.rsts_sent, s.probes_sent, s.connection_ends_reset,
        c.rate_limited, c.over_budget, c.protected_skipped, c.refused_max_rules,
        c.refused_max_seconds, c.refused_protected, c.refused_unauthorized,
        c.refused_interface
    );
    out.push_str(&format!(
        "flows tracked {} of {} (max_flows, shared by every capture)\n",
        s.flows_tracked, s.max_flows
    ));
    let p = &s.persistence;
    match (&p.state_file, &p.error) {
        (None, _) => out.push_str("rules saved: no (no state file)\n\n"),
        (Some(file), None) => out.push_str(&format!(
            "rules saved: ok ({file}; {} saves, {} failed)\n\n",
            p.saves, p.failures
        )),
        (Some(file), Some(e)) => out.push_str(&format!(
            "rules saved: FAILING since {} ({file}: {e}); changes are refused until it is writable\n\n",
            p.failing_since_unix.map_or("?".into(), when)
        )),
    }
    let rows: Vec<[String; 11]> = s
        .interfaces
        .iter()
        .map(|i| {
            let since = when(i.since_unix);
            [
                i.iface.clone(),
                if i.tracked {
                    format!("tracked since {since}")
                } else {
                    format!("rules only, since {since}")
                },
                i.pcap_received.to_string(),
                i.pcap_dropped.to_string(),
                i.pcap_if_dropped.to_string(),
                i.frames.to_string(),
                i.matched.to_string(),
                i.rsts_sent.to_string(),
                i.flows.to_string(),
                i.inject_errors.to_string(),
                i.restarts.to_string(),
            ]
        })
        .collect();
    out.push_str(&table(
        [
            "IFACE",
            "CAPTURED",
            "RECEIVED",
            "DROPPED",
            "IF_DROPPED",
            "FRAMES",
            "MATCHED",
            "RSTS",
            "FLOWS",
            "INJECT_ERR",
            "RESTARTS",
        ],
        &rows,
    ));
    if !s.reset_interfaces.is_empty() {
        let rows: Vec<[String; 4]> = s
            .reset_interfaces
            .iter()
            .map(|r| {
                [
                    r.iface.clone(),
                    r.state.clone(),
                    when(r.since_unix),
                    r.send_failures.to_string(),
                ]
            })
            .collect();
        out.push_str("\n\n");
        out.push_str(&table(
            ["RESET IFACE", "STATE", "SINCE", "SEND_FAILED"],
            &rows,
        ));
    }
    out
}

pub fn shown(rules: &[RuleResets]) -> String {
    let mut out = Vec::new();
    for r in rules {
        out.push(format!(
            "{} ({} connection ends reset)",
            describe(&r.rule),
            r.ends_reset
        ));
        let rows: Vec<[String; 3]> = r
            .resets
            .iter()
            .map(|x| [when(x.at_unix), x.end.clone(), x.peer.clone()])
            .collect();
        if rows.is_empty() {
            out.push("  no connection reset yet".into());
        } else {
            out.push(table(["WHEN", "RESET END", "PEER"], &rows));
        }
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_note_names_the_interface_and_the_time_it_was_captured_from() {
        // 2026-11-22 12:03:05 UTC.
        let since = 1_795_348_985.0;
        assert_eq!(
            captured_since_note("eth1", since, since + 3.0),
            "; note: eth1 was captured only from 12:03:05; connections silent since before then \
             die when they next send"
        );
        let note = captured_since_note("eth1", since, since + 86_400.0);
        assert!(note.contains("from 2026-11-22 12:03:05 UTC;"), "{note}");
    }
}
