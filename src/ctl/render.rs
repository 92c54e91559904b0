//! Readable tables from the admin API's JSON answers. Pure functions of the JSON: no I/O, no server needed.
//!
//! Lenient on purpose: a field the server leaves out (or adds) shows as `-` (or is ignored), so an older or
//! newer sluice still gets a readable answer; `--json` is the exact form for scripts.

use std::fmt::Write as _;

use serde_json::Value;

/// `GET /api/v1/state`: version, reloads, the last reload (with its error), routes with shares, servers.
pub(super) fn state(v: &Value) -> Result<String, String> {
    object(v)?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "version      {}  (published {})",
        text(&v["version"]),
        text(&v["published_at"])
    );
    let _ = writeln!(out, "config file  {}", text(&v["config_file"]));
    let _ = writeln!(out, "state file   {}", text(&v["state_file"]));
    let reloads = &v["reloads"];
    let _ = writeln!(
        out,
        "reloads      {} ok, {} failed",
        text(&reloads["ok"]),
        text(&reloads["failed"])
    );
    last_reload(&mut out, &v["last_reload"]);

    out.push('\n');
    routes(&mut out, list(&v["routes"]));

    out.push('\n');
    let mut table = Table::new(&["UPSTREAM", "SERVER", "STATE"]);
    for upstream in list(&v["upstreams"]) {
        let servers = list(&upstream["servers"]);
        if servers.is_empty() {
            table.row([text(&upstream["name"]), "(no servers)".to_owned(), String::new()]);
        }
        for (i, server) in servers.iter().enumerate() {
            let name = if i == 0 { text(&upstream["name"]) } else { String::new() };
            table.row([name, text(&server["addr"]), text(&server["state"])]);
        }
    }
    table.render(&mut out);
    Ok(out)
}

/// `PUT /api/v1/routes/{route}/weights`: the new version and the route as it now stands.
pub(super) fn weights(v: &Value) -> Result<String, String> {
    object(v)?;
    let mut out = String::new();
    let _ = writeln!(out, "route {} now at version {}", text(&v["name"]), text(&v["version"]));
    routes(&mut out, std::slice::from_ref(v));
    Ok(out)
}

/// `POST .../drain` and `.../enable`.
pub(super) fn server(v: &Value) -> Result<String, String> {
    object(v)?;
    Ok(format!(
        "{} {} is {} (version {})\n",
        text(&v["upstream"]),
        text(&v["server"]),
        text(&v["state"]),
        text(&v["version"])
    ))
}

/// `POST /api/v1/reload`.
pub(super) fn reload(v: &Value) -> Result<String, String> {
    object(v)?;
    let mut out = format!("reloaded: version {}\n", text(&v["version"]));
    for note in list(&v["notes"]) {
        let _ = writeln!(out, "  note: {}", text(note));
    }
    Ok(out)
}

/// `GET /api/v1/events`: oldest first, as the server sends them.
pub(super) fn events(v: &Value) -> Result<String, String> {
    object(v)?;
    let events = list(&v["events"]);
    if events.is_empty() {
        return Ok("no events\n".to_owned());
    }
    let mut table = Table::new(&["VERSION", "AT", "WHO", "WHAT", "CHANGE"]);
    table.align_right(0);
    for event in events {
        let version = match &event["version"] {
            Value::Null => "rejected".to_owned(),
            version => text(version),
        };
        let change = match (&event["before"], &event["after"]) {
            (Value::Null, Value::Null) => String::new(),
            (before, after) => format!("{} -> {}", text(before), text(after)),
        };
        table.row([
            version,
            text(&event["at"]),
            text(&event["who"]),
            text(&event["what"]),
            change,
        ]);
    }
    let mut out = String::new();
    table.render(&mut out);
    Ok(out)
}

/// Decisions `sluice ctl rollout` shows: the latest few (`--json` has them all).
const DECISIONS_SHOWN: usize = 10;

/// `GET /api/v1/routes/{route}/rollout`, and the answer to each rollout command (the same document): where the
/// rollout is, then its latest decisions, oldest first.
pub(super) fn rollout(v: &Value) -> Result<String, String> {
    object(v)?;
    let (config, state) = (&v["config"], &v["state"]);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "route        {}  ({}: {} -> {})",
        text(&v["route"]),
        text(&config["strategy"]),
        text(&state["stable"]),
        text(&state["canary"])
    );
    let phase = match &state["paused_from"] {
        Value::Null => text(&state["phase"]),
        from => format!("{} (from {})", text(&state["phase"]), text(from)),
    };
    let _ = writeln!(out, "phase        {phase}");
    // The API counts steps from 0; people (and the decision notes) from 1.
    let step = match state["step"].as_u64() {
        Some(step) if state["phase"] != "idle" => (step + 1).to_string(),
        _ => "-".to_owned(),
    };
    let _ = writeln!(
        out,
        "step         {step} of {}, canary at {} %",
        list(&config["steps"]).len(),
        text(&state["canary_percent"])
    );
    let _ = writeln!(
        out,
        "failures     {} in a row (rollback at {})",
        text(&state["failures"]),
        text(&config["failure_threshold"])
    );
    let _ = writeln!(out, "revision     {}", text(&state["revision"]));
    let _ = writeln!(out, "started      {}", text(&state["started_at"]));
    let _ = writeln!(out, "reason       {}", text(&state["reason"]));

    out.push('\n');
    let decisions = list(&v["decisions"]);
    if decisions.is_empty() {
        out.push_str("no decisions yet\n");
        return Ok(out);
    }
    let shown = &decisions[decisions.len().saturating_sub(DECISIONS_SHOWN)..];
    let mut table = Table::new(&["AT", "PHASE", "STEP", "VERDICT", "NOTE"]);
    table.align_right(2);
    for decision in shown {
        let step = decision["step"]
            .as_u64()
            .map_or_else(|| "-".to_owned(), |s| (s + 1).to_string());
        table.row([
            text(&decision["at"]),
            text(&decision["phase"]),
            step,
            text(&decision["judgement"]["overall"]),
            text(&decision["note"]),
        ]);
    }
    table.render(&mut out);
    if shown.len() < decisions.len() {
        let _ = writeln!(
            out,
            "(the last {} of {} decisions; --json shows them all with their numbers)",
            shown.len(),
            decisions.len()
        );
    }
    Ok(out)
}

fn last_reload(out: &mut String, reload: &Value) {
    if reload.is_null() {
        let _ = writeln!(out, "last reload  none yet");
        return;
    }
    let when = format!("at {} ({})", text(&reload["at"]), text(&reload["trigger"]));
    if reload["ok"].as_bool() == Some(true) {
        let _ = writeln!(out, "last reload  ok {when} -> version {}", text(&reload["version"]));
    } else {
        let _ = writeln!(out, "last reload  FAILED {when}; the previous config stays live");
        let _ = writeln!(out, "  error: {}", text(&reload["error"]));
    }
    for note in list(&reload["notes"]) {
        let _ = writeln!(out, "  note: {}", text(note));
    }
}

/// One row per (route, upstream): weight, share, and where the weights came from.
fn routes(out: &mut String, routes: &[Value]) {
    let mut table = Table::new(&["ROUTE", "MATCH", "UPSTREAM", "WEIGHT", "SHARE", "SOURCE", "SET AT"]);
    table.align_right(3);
    table.align_right(4);
    let mut all_zero = Vec::new();
    for route in routes {
        let hosts: Vec<String> = list(&route["hosts"]).iter().map(text).collect();
        let hosts = if hosts.is_empty() {
            "*".to_owned()
        } else {
            hosts.join(",")
        };
        let matches = format!("{hosts} {}", text(&route["path_prefix"]));
        let weights = list(&route["weights"]);
        if !weights.is_empty() && weights.iter().all(|w| w["weight"].as_u64() == Some(0)) {
            all_zero.push(text(&route["name"]));
        }
        let source = text(&route["weights_source"]);
        let set_at = text(&route["weights_set_at"]);
        if weights.is_empty() {
            table.row([
                text(&route["name"]),
                matches,
                "(none)".to_owned(),
                String::new(),
                String::new(),
                source,
                set_at,
            ]);
            continue;
        }
        for (i, w) in weights.iter().enumerate() {
            let first = i == 0;
            let cell = |s: &String| if first { s.clone() } else { String::new() };
            let share = match &w["share_percent"] {
                Value::Null => "-".to_owned(),
                share => format!("{} %", text(share)),
            };
            table.row([
                cell(&text(&route["name"])),
                cell(&matches),
                text(&w["upstream"]),
                text(&w["weight"]),
                share,
                cell(&source),
                cell(&set_at),
            ]);
        }
    }
    table.render(out);
    for name in all_zero {
        let _ = writeln!(out, "note: every weight of route {name} is 0, so it answers 503");
    }
}

fn object(v: &Value) -> Result<(), String> {
    if v.is_object() {
        Ok(())
    } else {
        Err("expected a JSON object".to_owned())
    }
}

fn list(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

/// A scalar as a user reads it: strings without quotes, `-` for null or missing.
fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Columns padded to their widest cell, two spaces apart, no trailing blanks.
#[derive(Debug)]
struct Table {
    header: Vec<String>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            right: vec![false; header.len()],
            rows: Vec::new(),
        }
    }

    fn align_right(&mut self, column: usize) {
        self.right[column] = true;
    }

    fn row<const N: usize>(&mut self, cells: [String; N]) {
        debug_assert_eq!(N, self.header.len(), "row width matches the header");
        self.rows.push(cells.into());
    }

    fn render(&self, out: &mut String) {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let width = widths[i];
                if self.right[i] {
                    let _ = write!(line, "{cell:>width$}");
                } else {
                    let _ = write!(line, "{cell:<width$}");
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `GET /api/v1/state` sample of docs/admin-api.md, verbatim.
    const STATE: &str = r#"{
  "version": 7,
  "published_at": "2026-11-23T04:30:00.123Z",
  "config_file": "/etc/sluice/sluice.toml",
  "state_file": "/etc/sluice/sluice.state.json",
  "reloads": { "ok": 3, "failed": 1 },
  "last_reload": {
    "at": "2026-11-23T04:29:00.000Z", "trigger": "file watcher", "ok": false, "version": null,
    "error": "/etc/sluice/sluice.toml:13:15: routes[1].path_prefix: `api` must start with `/`", "notes": []
  },
  "routes": [
    {
      "name": "web", "hosts": ["*"], "path_prefix": "/",
      "weights": [ { "upstream": "blue", "weight": 80, "share_percent": "80.00" },
                   { "upstream": "canary", "weight": 20, "share_percent": "20.00" } ],
      "weights_source": "admin", "weights_set_at": "2026-11-23T04:20:00.000Z"
    }
  ],
  "upstreams": [
    { "name": "blue", "servers": [ { "addr": "127.0.0.1:9101", "state": "active" } ] }
  ]
}"#;

    fn json(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn state_sample_renders_as_tables() {
        let expected = "\
version      7  (published 2026-11-23T04:30:00.123Z)
config file  /etc/sluice/sluice.toml
state file   /etc/sluice/sluice.state.json
reloads      3 ok, 1 failed
last reload  FAILED at 2026-11-23T04:29:00.000Z (file watcher); the previous config stays live
  error: /etc/sluice/sluice.toml:13:15: routes[1].path_prefix: `api` must start with `/`

ROUTE  MATCH  UPSTREAM  WEIGHT    SHARE  SOURCE  SET AT
web    * /    blue          80  80.00 %  admin   2026-11-23T04:20:00.000Z
              canary        20  20.00 %

UPSTREAM  SERVER          STATE
blue      127.0.0.1:9101  active
";
        assert_eq!(state(&json(STATE)).unwrap(), expected);
    }

    #[test]
    fn state_before_any_reload_with_file_weights_and_a_drained_server() {
        let mut v = json(STATE);
        v["last_reload"] = Value::Null;
        v["routes"][0]["weights_source"] = "file".into();
        v["routes"][0]["weights_set_at"] = Value::Null;
        v["upstreams"][0]["servers"]
            .as_array_mut()
            .unwrap()
            .push(json(r#"{"addr": "127.0.0.1:9102", "state": "drained"}"#));
        let out = state(&v).unwrap();
        assert!(out.contains("last reload  none yet\n"), "{out}");
        assert!(
            out.contains("web    * /    blue          80  80.00 %  file    -\n"),
            "{out}"
        );
        assert!(
            out.contains("blue      127.0.0.1:9101  active\n          127.0.0.1:9102  drained\n"),
            "{out}"
        );
    }

    #[test]
    fn successful_reload_shows_version_and_notes() {
        let mut v = json(STATE);
        v["last_reload"] = json(
            r#"{"at": "2026-11-23T05:00:00.000Z", "trigger": "admin api", "ok": true, "version": 9,
                "error": null, "notes": ["route web keeps its admin weights"]}"#,
        );
        let out = state(&v).unwrap();
        assert!(
            out.contains("last reload  ok at 2026-11-23T05:00:00.000Z (admin api) -> version 9\n"),
            "{out}"
        );
        assert!(out.contains("  note: route web keeps its admin weights\n"), "{out}");
        assert!(!out.contains("error"), "{out}");
    }

    #[test]
    fn weights_answer_shows_the_route_and_warns_when_all_are_zero() {
        let mut route = json(STATE)["routes"][0].clone();
        route["version"] = 8.into();
        let out = weights(&route).unwrap();
        assert!(out.starts_with("route web now at version 8\nROUTE  MATCH"), "{out}");
        assert!(out.contains("canary        20  20.00 %"), "{out}");
        assert!(!out.contains("503"), "{out}");

        route["weights"] = json(
            r#"[{"upstream": "blue", "weight": 0, "share_percent": "0.00"},
                {"upstream": "canary", "weight": 0, "share_percent": "0.00"}]"#,
        );
        assert!(
            weights(&route)
                .unwrap()
                .contains("every weight of route web is 0, so it answers 503")
        );
    }

    #[test]
    fn drain_and_reload_answers() {
        let drained = json(r#"{"version": 8, "upstream": "blue", "server": "127.0.0.1:9101", "state": "drained"}"#);
        assert_eq!(
            server(&drained).unwrap(),
            "blue 127.0.0.1:9101 is drained (version 8)\n"
        );
        let reloaded = json(r#"{"version": 9, "notes": ["upstream green added"]}"#);
        assert_eq!(
            reload(&reloaded).unwrap(),
            "reloaded: version 9\n  note: upstream green added\n"
        );
    }

    #[test]
    fn events_table_marks_rejected_changes() {
        let v = json(
            r#"{"events": [
              {"version": 8, "at": "2026-11-23T04:20:00.000Z", "who": "admin api 127.0.0.1:51234",
               "what": "weights of route web (admin)", "before": "blue=90 canary=10", "after": "blue=80 canary=20"},
              {"version": null, "at": "2026-11-23T04:29:00.000Z", "who": "file watcher",
               "what": "reload rejected", "before": null, "after": null}
            ]}"#,
        );
        let expected = "\
\x20VERSION  AT                        WHO                        WHAT                          CHANGE
       8  2026-11-23T04:20:00.000Z  admin api 127.0.0.1:51234  weights of route web (admin)  blue=90 canary=10 -> blue=80 canary=20
rejected  2026-11-23T04:29:00.000Z  file watcher               reload rejected
";
        assert_eq!(events(&v).unwrap(), expected);
        assert_eq!(events(&json(r#"{"events": []}"#)).unwrap(), "no events\n");
    }

    #[test]
    fn non_objects_are_refused() {
        assert!(state(&json("[]")).is_err());
        assert!(events(&json("\"ok\"")).is_err());
    }

    /// A rollout document as `GET /api/v1/routes/{route}/rollout` serves it (judgement trimmed to what is shown).
    const ROLLOUT: &str = r#"{
  "route": "web",
  "config": { "strategy": "canary", "stable": "blue", "canary": "canary", "steps": [5, 10, 25, 50, 100],
              "interval_s": 30.0, "failure_threshold": 2, "min_requests": 200, "progress_deadline_s": 600.0,
              "analysis": {}, "revision": "build-7" },
  "state": { "phase": "paused", "step": 1, "canary_percent": 10, "failures": 1, "paused_from": "progressing",
             "reason": null, "revision": "build-7", "stable": "blue", "canary": "canary",
             "started_at": "2026-11-23T04:30:00.123Z", "last_conclusive_at": "2026-11-23T04:31:00.123Z" },
  "decisions": [
    { "at_ms": 1795408200123, "at": "2026-11-23T04:30:00.123Z", "phase": "initializing", "step": 0,
      "note": "rollout started; asking the pre-rollout gate", "judgement": null },
    { "at_ms": 1795408230123, "at": "2026-11-23T04:30:30.123Z", "phase": "progressing", "step": 1,
      "note": "pre-step gate open; step 2 at 10 %", "judgement": null },
    { "at_ms": 1795408260123, "at": "2026-11-23T04:31:00.123Z", "phase": "progressing", "step": 1,
      "note": "analysis failed (1 of 2); holding", "judgement": { "overall": "fail" } },
    { "at_ms": 1795408270123, "at": "2026-11-23T04:31:10.123Z", "phase": "paused", "step": 1,
      "note": "paused while progressing", "judgement": null }
  ]
}"#;

    #[test]
    fn rollout_status_shows_where_it_is_and_the_latest_decisions() {
        let expected = "\
route        web  (canary: blue -> canary)
phase        paused (from progressing)
step         2 of 5, canary at 10 %
failures     1 in a row (rollback at 2)
revision     build-7
started      2026-11-23T04:30:00.123Z
reason       -

AT                        PHASE         STEP  VERDICT  NOTE
2026-11-23T04:30:00.123Z  initializing     1  -        rollout started; asking the pre-rollout gate
2026-11-23T04:30:30.123Z  progressing      2  -        pre-step gate open; step 2 at 10 %
2026-11-23T04:31:00.123Z  progressing      2  fail     analysis failed (1 of 2); holding
2026-11-23T04:31:10.123Z  paused           2  -        paused while progressing
";
        assert_eq!(rollout(&json(ROLLOUT)).unwrap(), expected);
    }

    #[test]
    fn rollout_status_keeps_the_last_decisions_and_says_so() {
        let mut doc = json(ROLLOUT);
        let one = doc["decisions"][3].clone();
        let many: Vec<Value> = (0..25)
            .map(|i| {
                let mut d = one.clone();
                d["note"] = Value::from(format!("decision {i}"));
                d
            })
            .collect();
        doc["decisions"] = Value::from(many);
        let out = rollout(&doc).unwrap();
        assert!(!out.contains("decision 14\n") && out.contains("decision 15\n") && out.contains("decision 24\n"));
        assert!(
            out.ends_with("(the last 10 of 25 decisions; --json shows them all with their numbers)\n"),
            "{out}"
        );

        doc["decisions"] = Value::from(Vec::<Value>::new());
        doc["state"]["paused_from"] = Value::Null;
        let out = rollout(&doc).unwrap();
        assert!(
            out.contains("phase        paused\n") && out.ends_with("\nno decisions yet\n"),
            "{out}"
        );

        doc["state"]["phase"] = Value::from("idle");
        doc["state"]["step"] = Value::from(0);
        assert!(rollout(&doc).unwrap().contains("step         - of 5, canary at 10 %\n"));
    }
}
