//! A table of command lines and what each must give.
use super::*;

fn args(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_owned).collect()
}

fn ok(line: &str) -> Command {
    parse(&args(line), None)
        .unwrap_or_else(|e| panic!("{line}: {e}"))
        .command
}

fn err(line: &str) -> String {
    match parse(&args(line), None) {
        Ok(inv) => panic!("{line}: parsed as {inv:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_seed_line_parses_verbatim() {
    let Command::Add(add) = ok("ids-7 -i eth1 -o eth0 -h 192.0.2.10 -d 180") else {
        panic!("not an add");
    };
    assert_eq!(
        (
            &*add.engid,
            &*add.sniff_if,
            &*add.reset_if,
            &*add.host,
            add.port.as_deref(),
            &*add.seconds
        ),
        ("ids-7", "eth1", "eth0", "192.0.2.10", None, "180")
    );
    let Command::Add(add) = ok("ids-7 -i eth1 -o eth0 -h 192.0.2.10 -p 443 -d 180") else {
        panic!("not an add");
    };
    assert_eq!(add.port.as_deref(), Some("443"));
    // Options in any order, the explicit verb, and IPv6.
    assert!(matches!(
        ok("-d 5 -h 2001:db8::1 -o eth0 -i eth1 e1"),
        Command::Add(_)
    ));
    assert!(matches!(
        ok("add e1 -i eth1 -o eth0 -h 2001:db8::1 -d 5"),
        Command::Add(_)
    ));
    // An engid that is a verb goes through `add`.
    let Command::Add(add) = ok("add list -i eth1 -o eth0 -h 192.0.2.1 -d 5") else {
        panic!("not an add");
    };
    assert_eq!(add.engid, "list");
}

#[test]
fn verbs() {
    assert_eq!(ok("list"), Command::List { json: false });
    assert_eq!(ok("list --json"), Command::List { json: true });
    assert_eq!(ok("flush"), Command::Flush);
    assert_eq!(ok("stats --json"), Command::Stats { json: true });
    let Command::Show { show, json } = ok("show e1 -h 192.0.2.1") else {
        panic!("not a show");
    };
    assert_eq!(
        (show.engid.as_deref(), show.host.as_deref(), json),
        (Some("e1"), Some("192.0.2.1"), false)
    );
    assert!(matches!(ok("show"), Command::Show { .. }));
    assert_eq!(ok("--help"), Command::Help);
    assert_eq!(ok("e1 -i eth1 --help"), Command::Help);
    let Command::Cancel(key) = ok("cancel e1 -h 192.0.2.1 -p 22") else {
        panic!("not a cancel");
    };
    assert_eq!(
        (&*key.engid, &*key.host, key.port.as_deref()),
        ("e1", "192.0.2.1", Some("22"))
    );
}

#[test]
fn socket_from_flag_or_environment() {
    let inv = parse(&args("--socket /tmp/s list"), Some("/env".into())).unwrap();
    assert_eq!(inv.socket, Some(PathBuf::from("/tmp/s")));
    let inv = parse(&args("list"), Some("/env".into())).unwrap();
    assert_eq!(inv.socket, Some(PathBuf::from("/env")));
    let inv = parse(&args("e1 -i a -o b -h 192.0.2.1 -d 1 --socket=/x"), None).unwrap();
    assert_eq!(inv.socket, Some(PathBuf::from("/x")));
}

#[test]
fn every_error_is_one_line_naming_the_problem() {
    let table: &[(&str, &str)] = &[
        ("", "no arguments"),
        ("e1 -o eth0 -h 192.0.2.1 -d 180", "missing -i <SNIFF_IF>"),
        ("e1 -i eth1 -h 192.0.2.1 -d 180", "missing -o <RESET_IF>"),
        ("e1 -i eth1 -o eth0 -d 180", "missing -h <HOST>"),
        ("e1 -i eth1 -o eth0 -h 192.0.2.1", "missing -d <SECONDS>"),
        ("-i eth1 -o eth0 -h 192.0.2.1 -d 180", "missing <ENGID>"),
        (
            "e1 -i eth1 -o eth0 -h host.example -d 180",
            "HOST 'host.example' is not an IPv4 or IPv6 address",
        ),
        (
            "e1 -i eth1 -o eth0 -h 192.0.2.1 -p 0 -d 180",
            "PORT '0' is not a port number in 1..=65535",
        ),
        (
            "e1 -i eth1 -o eth0 -h 192.0.2.1 -p 70000 -d 180",
            "PORT '70000'",
        ),
        (
            "e1 -i eth1 -o eth0 -h 192.0.2.1 -d 0",
            "SECONDS '0' is not a whole number of seconds in 1..=86400",
        ),
        (
            "e1 -i eth1 -o eth0 -h 192.0.2.1 -d 86401",
            "SECONDS '86401'",
        ),
        ("e1 -i eth1 -o eth0 -h 192.0.2.1 -d 1.5", "SECONDS '1.5'"),
        (
            "bad!id -i eth1 -o eth0 -h 192.0.2.1 -d 5",
            "ENGID 'bad!id' is not 1-64 characters",
        ),
        (
            "e1 -i eth/1 -o eth0 -h 192.0.2.1 -d 5",
            "interface name 'eth/1'",
        ),
        (
            "e1 -i eth1 -o eth0 -h 192.0.2.1 -d 5 -x 1",
            "unknown argument '-x'",
        ),
        (
            "e1 -i eth1 -i eth2 -o eth0 -h 192.0.2.1 -d 5",
            "-i <SNIFF_IF> given twice",
        ),
        (
            "e1 -i eth1 -o eth0 -h 192.0.2.1 -d",
            "-d <SECONDS> needs a value",
        ),
        ("cancel e1", "missing -h <HOST>"),
        ("cancel e1 -h nothost", "HOST 'nothost'"),
        ("list --jsn", "unknown argument '--jsn'"),
        ("flush now", "unknown argument 'now'"),
        ("show -h nothost", "HOST 'nothost'"),
    ];
    for (line, want) in table {
        let got = err(line);
        assert!(got.contains(want), "{line:?}: got {got:?}, want {want:?}");
        assert!(!got.contains('\n'), "{line:?}: {got:?} is not one line");
    }
}

/// The definitions man pages and completions are generated from pass clap's own checks (a
/// duplicate `-h`, a missing value name); `-h` stays the host in every verb that has one.
#[test]
fn documented_commands_are_consistent() {
    use clap::CommandFactory;
    let client = command();
    client.clone().debug_assert();
    for verb in ["add", "cancel", "show"] {
        let sub = client.find_subcommand(verb).expect(verb);
        let h = sub.get_arguments().find(|a| a.get_short() == Some('h'));
        assert_eq!(h.map(|a| a.get_id().as_str()), Some("host"), "{verb} -h");
    }
    daemon::DaemonArgs::command().debug_assert();
    hunt::HuntArgs::command().debug_assert();
}

/// The help is the clap definitions: a usage line per verb the parser knows, and each
/// argument's text as clap documents it (the hand-written help once lacked the carrier check).
#[test]
fn help_is_generated_from_the_definitions() {
    let help = help();
    assert!(help.contains(
        "  tcpreset [--socket PATH] ENGID -i SNIFF_IF -o RESET_IF -h HOST [-p PORT] -d SECONDS\n"
    ));
    for verb in VERBS {
        let line = format!("  tcpreset [--socket PATH] {verb}");
        assert!(help.contains(&line), "no usage line for {verb}: {help}");
    }
    assert!(help.contains("  tcpreset [--socket PATH] show [ENGID] [-h HOST] [--json]\n"));
    assert!(
        help.contains("  -i SNIFF_IF    monitoring interface (must exist, be up and have carrier;"),
        "{help}"
    );
    assert!(help.contains("  -h HOST        IPv4 or IPv6 address of the host to isolate\n"));
    assert!(help.contains("exit codes: 0 done, 1 unexpected failure"));
}
