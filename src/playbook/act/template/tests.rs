//! Tests of the Mustache renderer: cases from the Mustache spec and the seeds' script forms.

use serde_json::json;

use super::*;

fn render(template: &str, data: serde_json::Value) -> String {
    Template::parse(template)
        .unwrap()
        .render_string(&[&data], Escape::Html)
}

#[test]
fn spec_interpolation() {
    assert_eq!(
        render("Hello, {{subject}}!", json!({"subject": "world"})),
        "Hello, world!"
    );
    assert_eq!(
        render("{{forbidden}}", json!({"forbidden": "& \" < >"})),
        "&amp; &quot; &lt; &gt;"
    );
    assert_eq!(
        render("{{{forbidden}}}", json!({"forbidden": "& \" < >"})),
        "& \" < >"
    );
    assert_eq!(
        render("{{&forbidden}}", json!({"forbidden": "& \" < >"})),
        "& \" < >"
    );
    assert_eq!(
        render("\"{{mph}} miles an hour!\"", json!({"mph": 85})),
        "\"85 miles an hour!\""
    );
    assert_eq!(render("{{power}}", json!({"power": 1.210})), "1.21");
    assert_eq!(
        render("I ({{cannot}}) be seen!", json!({})),
        "I () be seen!"
    );
    assert_eq!(render("{{null}}", json!({"null": null})), "");
    assert_eq!(
        render("{{a.b.c}}", json!({"a": {"b": {"c": "here"}}})),
        "here"
    );
    assert_eq!(render("{{a.b.c}}", json!({"a": {"b": {}}})), "");
    assert_eq!(
        render(
            "{{#a}}{{b.c}}{{/a}}",
            json!({"a": {"b": {}}, "b": {"c": "ERROR"}})
        ),
        ""
    );
    assert_eq!(
        render(
            "{{a.b.c.d.e.name}}",
            json!({"a": {"b": {"c": {"d": {"e": {"name": "Phil"}}}}}})
        ),
        "Phil"
    );
    assert_eq!(render("|{{ string }}|", json!({"string": "---"})), "|---|");
}

#[test]
fn spec_sections() {
    assert_eq!(
        render(
            "\"{{#boolean}}This should be rendered.{{/boolean}}\"",
            json!({"boolean": true})
        ),
        "\"This should be rendered.\""
    );
    assert_eq!(
        render(
            "\"{{#boolean}}This should not be rendered.{{/boolean}}\"",
            json!({"boolean": false})
        ),
        "\"\""
    );
    assert_eq!(
        render(
            "\"{{#context}}Hi {{name}}.{{/context}}\"",
            json!({"context": {"name": "Joe"}})
        ),
        "\"Hi Joe.\""
    );
    assert_eq!(
        render(
            "\"{{#list}}{{item}}{{/list}}\"",
            json!({"list": [{"item": 1}, {"item": 2}, {"item": 3}]})
        ),
        "\"123\""
    );
    assert_eq!(
        render("\"{{#list}}Yay lists!{{/list}}\"", json!({"list": []})),
        "\"\""
    );
    assert_eq!(
        render("\"{{#list}}({{.}}){{/list}}\"", json!({"list": ["a", "b"]})),
        "\"(a)(b)\""
    );
    assert_eq!(
        render("{{#a.b.c}}Here{{/a.b.c}}", json!({"a": {"b": {"c": true}}})),
        "Here"
    );
    // Context stack: an inner section sees the outer frames.
    let data =
        json!({"a": {"one": 1}, "b": {"two": 2}, "c": {"three": 3, "d": {"four": 4, "five": 5}}});
    assert_eq!(
        render(
            "{{#a}}{{one}}{{#b}}{{one}}{{two}}{{#c}}{{one}}{{two}}{{three}}{{/c}}{{/b}}{{/a}}",
            data
        ),
        "112123"
    );
    // Standalone lines are removed.
    assert_eq!(
        render(
            "| This Is\n{{#boolean}}\n|\n{{/boolean}}\n| A Line\n",
            json!({"boolean": true})
        ),
        "| This Is\n|\n| A Line\n"
    );
    assert_eq!(
        render(
            "| This Is\n  {{#boolean}}\n|\n  {{/boolean}}\n| A Line\n",
            json!({"boolean": true})
        ),
        "| This Is\n|\n| A Line\n"
    );
    assert_eq!(
        render(
            " | {{#boolean}} {{! Important Whitespace }}\n {{/boolean}} | \n",
            json!({"boolean": true})
        ),
        " |  \n  | \n"
    );
    assert_eq!(
        render("#{{#boolean}}\n/\n  {{/boolean}}", json!({"boolean": true})),
        "#\n/\n"
    );
    assert_eq!(
        render(
            "|\r\n{{#boolean}}\r\n{{/boolean}}\r\n|",
            json!({"boolean": true})
        ),
        "|\r\n|"
    );
}

#[test]
fn spec_inverted_comments_and_delimiters() {
    assert_eq!(
        render(
            "\"{{^boolean}}This should be rendered.{{/boolean}}\"",
            json!({"boolean": false})
        ),
        "\"This should be rendered.\""
    );
    assert_eq!(
        render("\"{{^list}}Yay lists!{{/list}}\"", json!({"list": []})),
        "\"Yay lists!\""
    );
    assert_eq!(
        render(
            "\"{{^missing}}Found key 'missing'!{{/missing}}\"",
            json!({})
        ),
        "\"Found key 'missing'!\""
    );
    assert_eq!(
        render("12345{{! Comment Block! }}67890", json!({})),
        "1234567890"
    );
    assert_eq!(
        render("Begin.\n{{! Comment Block! }}\nEnd.\n", json!({})),
        "Begin.\nEnd.\n"
    );
    assert_eq!(
        render("{{=<% %>=}}(<%text%>)", json!({"text": "Hey!"})),
        "(Hey!)"
    );
    assert_eq!(
        render("Begin.\n{{=@ @=}}\nEnd.\n", json!({})),
        "Begin.\nEnd.\n"
    );
}

#[test]
fn errors_name_the_line_and_the_fix() {
    assert_eq!(
        Template::parse("a\n{{#x}}b").unwrap_err(),
        TemplateError::Unclosed {
            name: "x".into(),
            line: 2
        }
    );
    assert!(matches!(
        Template::parse("{{/x}}"),
        Err(TemplateError::NotOpen { .. })
    ));
    assert!(matches!(
        Template::parse("{{#x}}{{#y}}{{/x}}{{/y}}"),
        Err(TemplateError::Mismatch { .. })
    ));
    assert!(matches!(
        Template::parse("{{x"),
        Err(TemplateError::UnclosedTag { line: 1 })
    ));
    assert!(matches!(
        Template::parse("{{> p}}"),
        Err(TemplateError::Partial { .. })
    ));
    let e = Template::parse("\n\n{{#a}}").unwrap_err().to_string();
    assert!(e.contains("line 3") && e.contains("{{/a}}"), "{e}");
}

fn ctx() -> serde_json::Value {
    json!({"ctx": {"payload": {"aggregations": {"find_unique_engid": {"buckets": [
        {"key": "2001219", "engid": "2001219", "doc_count": 3, "find_unique_srcip": {"buckets": [
            {"key": "10.0.0.1", "srcip": "10.0.0.1", "doc_count": 2},
            {"key": "10.0.0.2", "srcip": "10.0.0.2", "doc_count": 1}]}},
        {"key": "2010935", "engid": "2010935", "doc_count": 1, "find_unique_srcip": {"buckets": [
            {"key": "10.0.0.1", "srcip": "10.0.0.1", "doc_count": 1}]}}
    ]}}}}})
}

#[test]
fn the_seed_script_renders_one_line_per_engid_and_srcip() {
    let seed = "{{#ctx.payload.aggregations.find_unique_engid.buckets}}\n{{#find_unique_srcip.buckets}}\ntcpreset {{engid}} -i eth1 -o eth0 -h {{srcip}} -d 180\n{{/find_unique_srcip.buckets}}\n{{/ctx.payload.aggregations.find_unique_engid.buckets}}";
    assert_eq!(
        render(seed, ctx()),
        "tcpreset 2001219 -i eth1 -o eth0 -h 10.0.0.1 -d 180\ntcpreset 2001219 -i eth1 -o eth0 -h 10.0.0.2 -d 180\ntcpreset 2010935 -i eth1 -o eth0 -h 10.0.0.1 -d 180\n"
    );
    let inline = "{{#ctx.payload.aggregations.find_unique_engid.buckets}}{{#find_unique_srcip.buckets}}tcpreset {{engid}} -i eth1 -o eth0 -h {{srcip}} -d 180{{/find_unique_srcip.buckets}}{{/ctx.payload.aggregations.find_unique_engid.buckets}}";
    let one = json!({"ctx": {"payload": {"aggregations": {"find_unique_engid": {"buckets": [
        {"engid": "7", "find_unique_srcip": {"buckets": [{"srcip": "10.0.0.1"}]}}]}}}}});
    assert_eq!(
        render(inline, one),
        "tcpreset 7 -i eth1 -o eth0 -h 10.0.0.1 -d 180"
    );
}

#[test]
fn values_and_text_stay_apart_and_json_escaping_is_safe() {
    let t = Template::parse("{\"ip\": \"{{srcip}}\", \"raw\": \"{{{srcip}}}\"}").unwrap();
    let data = json!({"srcip": "1.2.3.4\", \"x\": \"\n"});
    let body = t.render_string(&[&data], Escape::Json);
    let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(parsed["ip"], "1.2.3.4\", \"x\": \"\n");
    assert_eq!(parsed["raw"], parsed["ip"]);
    let pieces = Template::parse("a {{x}}")
        .unwrap()
        .render(&[&json!({"x": "b c"})]);
    assert_eq!(
        pieces,
        [
            Piece::Text("a ".into()),
            Piece::Value {
                text: "b c".into(),
                raw: false,
                name: "x".into(),
                missing: None,
            }
        ]
    );
    let pieces = Template::parse("{{#a}}{{nope}}{{/a}} {{gone}}")
        .unwrap()
        .render(&[&json!({"a": [{"k": 1}]})]);
    let missing: Vec<_> = pieces
        .iter()
        .filter_map(|p| match p {
            Piece::Value { name, missing, .. } => Some((name.as_str(), missing.clone())),
            Piece::Text(_) => None,
        })
        .collect();
    assert_eq!(
        missing,
        [
            (
                "nope",
                Some(Missing {
                    section: Some("a".into())
                })
            ),
            ("gone", Some(Missing { section: None })),
        ]
    );
    assert_eq!(
        render("{{id.orig_h}}", json!({"id.orig_h": "10.1.1.1"})),
        "10.1.1.1"
    );
}
