use super::*;

fn data() -> TemplateData {
    TemplateData {
        labels: [("instance", "node1:9100"), ("job", "node")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        external_labels: [("cluster".to_string(), "eu".to_string())].into(),
        external_url: "http://sb.example.com:4320/prefix".into(),
        value: 0.93456,
    }
}

fn render(t: &str) -> String {
    match expand("t", t, &data()) {
        Ok(s) => s,
        Err(e) => panic!("{t}: {e}"),
    }
}

fn parse_err(t: &str) -> String {
    match Template::parse("__alert_X", t) {
        Ok(_) => panic!("{t} parsed"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn labels_value_and_external() {
    assert_eq!(
        render("Instance {{ $labels.instance }} of {{ .Labels.job }} is {{ $value }}"),
        "Instance node1:9100 of node is 0.93456"
    );
    assert_eq!(
        render("{{ $externalLabels.cluster }} {{ $externalURL }} {{ .ExternalURL }}"),
        "eu http://sb.example.com:4320/prefix http://sb.example.com:4320/prefix"
    );
    assert_eq!(render("[{{ $labels.missing }}]"), "[]");
}

#[test]
fn functions_and_pipelines() {
    assert_eq!(render("{{ $value | humanizePercentage }}"), "93.46%");
    assert_eq!(render("{{ humanize 1234567 }}"), "1.235M");
    assert_eq!(render("{{ 3725 | humanizeDuration }}"), "1h 2m 5s");
    assert_eq!(render(r#"{{ printf "%.2f" $value }}"#), "0.93");
    assert_eq!(render(r#"{{ printf "%s=%d" "x" 3 | toUpper }}"#), "X=3");
    assert_eq!(render("{{ $labels.instance | stripPort }}"), "node1");
    assert_eq!(
        render(r#"{{ reReplaceAll "(.*):(.*)" "$2" $labels.instance }}"#),
        "9100"
    );
    assert_eq!(
        render(r#"{{ if match "^node" $labels.job }}yes{{ end }}"#),
        "yes"
    );
    assert_eq!(render("{{ pathPrefix }}"), "/prefix");
    assert_eq!(render("{{ (humanize 2000) }}"), "2k");
    assert_eq!(render(r#"{{ "5m" | parseDuration }}"#), "300");
    assert_eq!(render(r#"{{ index $labels "job" }}"#), "node");
    assert_eq!(render(r#"{{ len $labels }}"#), "2");
}

#[test]
fn control_flow_and_variables() {
    assert_eq!(
        render("{{ if gt $value 0.9 }}high{{ else if gt $value 0.5 }}mid{{ else }}low{{ end }}"),
        "high"
    );
    assert_eq!(
        render("{{ if lt $value 0.5 }}low{{ else if gt $value 0.9 }}high{{ end }}"),
        "high"
    );
    assert_eq!(
        render("{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}"),
        "instance=node1:9100;job=node;"
    );
    assert_eq!(render("{{ $x := 2 }}{{ $x }}{{ $x = 3 }}{{ $x }}"), "23");
    assert_eq!(
        render("{{ with $labels.job }}job {{ . }}{{ end }}"),
        "job node"
    );
    assert_eq!(
        render("{{ with $labels.nope }}x{{ else }}none{{ end }}"),
        "none"
    );
    assert_eq!(render("a  {{- /* comment */ -}}  b"), "ab");
    assert_eq!(
        render("{{ if and true (eq $labels.job \"node\") }}ok{{ end }}"),
        "ok"
    );
    assert_eq!(
        render("{{ if not (eq $labels.job \"x\" \"y\") }}ok{{ end }}"),
        "ok"
    );
}

#[test]
fn errors_name_template_line_and_reason() {
    assert_eq!(
        parse_err("Instance {{ $label.foo }} down"),
        "template: __alert_X:1: undefined variable \"$label\""
    );
    assert_eq!(
        parse_err("a\nb {{ query \"up\" }}"),
        "template: __alert_X:2: function \"query\" is not supported in SignalBox alert templates"
    );
    assert_eq!(
        parse_err("{{ nosuch 1 }}"),
        "template: __alert_X:1: function \"nosuch\" not defined"
    );
    assert!(parse_err("{{ if true }}x").contains("missing {{end}}"));
    assert!(parse_err("{{ end }}").contains("unexpected {{end}}"));
    assert!(parse_err("{{ $labels.job ").contains("unclosed action"));
    assert!(parse_err("{{ define \"x\" }}{{ end }}").contains("not supported"));
    // A variable declared inside a block is not visible after it.
    assert!(
        parse_err("{{ if true }}{{ $y := 1 }}{{ end }}{{ $y }}").contains("undefined variable")
    );
    let e = expand("t", "{{ humanize \"abc\" }}", &data()).unwrap_err();
    assert!(e.msg.contains("can't convert"), "{e}");
}
