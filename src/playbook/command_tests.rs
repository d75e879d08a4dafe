//! Tests of script checking: hostile values, schemas and remote quoting.

use serde_json::json;

use super::*;
use crate::playbook::template::Template;

const SCRIPT: &str = "{{#rows}}\ntcpreset {{engid}} -i eth1 -o eth0 -h {{srcip}} -d 180\n{{/rows}}";

fn run(rows: serde_json::Value) -> Vec<Result<CheckedLine, Refusal>> {
    let data = json!({ "rows": rows });
    check_script(
        &Template::parse(SCRIPT).unwrap().render(&[&data]),
        &default_allow_list(),
    )
}

#[test]
fn good_lines_pass_with_their_words() {
    let out = run(
        json!([{"engid": "2001219", "srcip": "10.0.0.1"}, {"engid": "ids:7", "srcip": "fe80::1"}]),
    );
    let ok: Vec<_> = out.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        ok[0].args,
        ["2001219", "-i", "eth1", "-o", "eth0", "-h", "10.0.0.1", "-d", "180"]
    );
    assert_eq!(ok[0].program, "tcpreset");
    assert_eq!(ok[1].args[6], "fe80::1");
}

#[test]
fn hostile_values_refuse_their_line_and_only_their_line() {
    let hostile = [
        "1.2.3.4; rm -rf /",
        "1.2.3.4\ntcpreset x -i eth1 -o eth0 -h 8.8.8.8 -d 86400",
        "$(reboot)",
        "1.2.3.4'",
        "\"1.2.3.4\"",
        "`id`",
        "1.2.3.4|sh",
        "1.2.3.4 -p 22",
        "1.2.3.4\r",
        "1.2.3.4\u{0}",
    ];
    for value in hostile {
        let out =
            run(json!([{"engid": "e1", "srcip": value}, {"engid": "e1", "srcip": "10.0.0.2"}]));
        assert_eq!(out.len(), 2, "{value:?} must not add lines: {out:?}");
        assert!(out[0].is_err(), "{value:?} must be refused: {out:?}");
        assert!(out[1].is_ok(), "the good line still runs");
    }
    let out = run(json!([{"engid": "$(id)", "srcip": "10.0.0.1"}]));
    assert!(out[0].as_ref().unwrap_err().reason.contains("ENGID"));
    let out = run(json!([{"engid": "-oProxyCommand=x", "srcip": "10.0.0.1"}]));
    assert!(out[0].is_err());
}

#[test]
fn schema_rules() {
    let check = |line: &str| check_line(line, &default_allow_list());
    assert!(check("tcpreset e -i eth1 -o eth0 -h 10.0.0.1 -p 443 -d 60").is_ok());
    assert!(check("tcpreset add e -i eth1 -o eth0 -h ::1 -d 86400").is_ok());
    assert!(check("tcpreset list --json").is_ok());
    assert!(check("tcpreset cancel e -h 10.0.0.1 -p 22").is_ok());
    assert!(check("tcpreset flush").is_ok());
    for bad in [
        "rm -rf /",
        "tcpreset e -i eth1 -o eth0 -h 10.0.0.1",
        "tcpreset e -i eth1 -o eth0 -h 10.0.0.1 -d 0",
        "tcpreset e -i eth1 -o eth0 -h 10.0.0.1 -d 86401",
        "tcpreset e -i eth1 -o eth0 -h 10.0.0.1 -d +5",
        "tcpreset e -i eth1 -o eth0 -h 10.0.0.1 -p 0 -d 5",
        "tcpreset e -i eth1 -o eth0 -h 10.0.0.1 -p 65536 -d 5",
        "tcpreset e -i .. -o eth0 -h 10.0.0.1 -d 5",
        "tcpreset e -i averyveryverylongname -o eth0 -h 10.0.0.1 -d 5",
        "tcpreset e -i eth1 -o eth0 -h 10.0.0.300 -d 5",
        "tcpreset e -i eth1 -o eth0 -h 10.0.0.1 -d 5 -d 6",
        "tcpreset e -i eth1 -o eth0 -h 10.0.0.1 -d 5 --force",
        "tcpreset list extra",
        "tcpreset",
        &format!(
            "tcpreset {} -i eth1 -o eth0 -h 10.0.0.1 -d 5",
            "e".repeat(65)
        ),
    ] {
        assert!(check(bad).is_err(), "{bad} must be refused");
    }
    let e = check("rm -rf /").unwrap_err();
    assert!(e.reason.contains("not an allowed command"), "{e:?}");
}

#[test]
fn remote_words_are_quoted_for_the_shell() {
    assert_eq!(shell_quote("10.0.0.1"), "10.0.0.1");
    assert_eq!(shell_quote("fe80::1"), "fe80::1");
    assert_eq!(shell_quote("a b"), "'a b'");
    assert_eq!(shell_quote("it's"), r"'it'\''s'");
    assert_eq!(shell_quote("$(id)"), "'$(id)'");
    assert_eq!(shell_quote(""), "''");
    let target = SshTarget {
        host: "127.0.0.1".into(),
        port: 22,
        user: "tcpreset".into(),
        identity_file: Some("/k".into()),
        known_hosts_file: Some("/kh".into()),
    };
    assert!(target.check().is_ok());
    let line = CheckedLine {
        line: String::new(),
        program: "/usr/local/bin/tcp reset".into(),
        args: vec!["e1".into(), "-h".into(), "10.0.0.1".into()],
    };
    let args = target.ssh_args(&line);
    assert!(args.windows(2).any(|w| w == ["-o", "BatchMode=yes"]));
    assert!(args
        .windows(2)
        .any(|w| w == ["-o", "StrictHostKeyChecking=yes"]));
    assert_eq!(
        args.last().unwrap(),
        "'/usr/local/bin/tcp reset' e1 -h 10.0.0.1"
    );
    assert_eq!(args[args.len() - 3..args.len() - 1], ["--", "127.0.0.1"]);
    let evil = SshTarget {
        host: "-oProxyCommand=sh".into(),
        ..target.clone()
    };
    assert!(evil.check().is_err());
}
