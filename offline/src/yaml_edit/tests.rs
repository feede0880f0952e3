use serde_json::{Value, json};

use super::*;

/// The edited text of `input` under `patch` (RFC 6902 JSON), checked against the patched
/// value as the CLI checks it.
fn edited(input: &str, patch: Value) -> Result<String, EditError> {
    let ops: Vec<PatchOperation> = serde_json::from_value(patch).unwrap();
    let mut expected: Value = serde_saphyr::from_str(input).unwrap();
    json_patch::patch(&mut expected, &ops).unwrap();
    let ops: Vec<Op> = ops
        .iter()
        .map(|op| Op::from_patch(&[], op).unwrap())
        .collect();
    edit_document(input, &ops, &expected)
}

const ENV: &str = "[{\"name\": \"GOMAXPROCS\", \"value\": \"2\"}]";

fn add(path: &str, value: &str) -> Value {
    json!([{"op": "add", "path": path, "value": serde_json::from_str::<Value>(value).unwrap()}])
}

#[test]
fn inserts_in_the_style_around_them() {
    let cases = [
        (
            "block env, indented sequences",
            "spec:\n  containers:\n    - name: app # the app\n      image: x\n",
            add("/spec/containers/0/env", ENV),
            "spec:\n  containers:\n    - name: app # the app\n      image: x\n      env:\n        - name: GOMAXPROCS\n          value: \"2\"\n",
        ),
        (
            "indentless sequences",
            "spec:\n  containers:\n  - name: app\n    image: x\n",
            add("/spec/containers/0/env", ENV),
            "spec:\n  containers:\n  - name: app\n    image: x\n    env:\n    - name: GOMAXPROCS\n      value: \"2\"\n",
        ),
        (
            "append after a comment-ended entry, before the comment that follows",
            "env:\n- name: A\n  value: 'b' # mine\n# about resources\nresources: {}\n",
            add("/env/-", "{\"name\": \"GOMAXPROCS\", \"value\": \"2\"}"),
            "env:\n- name: A\n  value: 'b' # mine\n- name: GOMAXPROCS\n  value: \"2\"\n# about resources\nresources: {}\n",
        ),
        (
            "empty flow sequence becomes a block one",
            "c:\n  env: [] # none yet\n  image: x\n",
            add("/c/env/-", "{\"name\": \"A\", \"value\": \"b\"}"),
            "c:\n  env: # none yet\n    - name: A\n      value: b\n  image: x\n",
        ),
        (
            "null becomes a block sequence",
            "c:\n  env: null # none\n  image: x\n",
            add("/c/env", ENV),
            "c:\n  env: # none\n    - name: GOMAXPROCS\n      value: \"2\"\n  image: x\n",
        ),
        (
            "empty flow mapping becomes a block one",
            "metadata:\n    annotations: {}\n    name: p\n",
            add(
                "/metadata/annotations/deployguard.io~1injected",
                "\"app: GOMAXPROCS=2\"",
            ),
            "metadata:\n    annotations:\n        deployguard.io/injected: \"app: GOMAXPROCS=2\"\n    name: p\n",
        ),
        (
            "one-line flow mapping is extended in place",
            "metadata: {name: p, annotations: {a: b}}\n",
            add("/metadata/annotations/k", "\"v\""),
            "metadata: {name: p, annotations: {a: b, \"k\":\"v\"}}\n",
        ),
        (
            "multi-line flow, trailing comma kept",
            "{\n  spec: {\n    env: [\n      {name: A},\n    ],\n  },\n}\n",
            add("/spec/env/-", "{\"name\": \"B\"}"),
            "{\n  spec: {\n    env: [\n      {name: A}, {\"name\":\"B\"},\n    ],\n  },\n}\n",
        ),
        (
            "a whole metadata at the document's step",
            "# licence\n#  header\nkind: Pod\nspec:\n   x: 1\n",
            add("/metadata", "{\"annotations\": {\"a\": \"b\"}}"),
            "# licence\n#  header\nkind: Pod\nspec:\n   x: 1\nmetadata:\n   annotations:\n      a: b\n",
        ),
        (
            "CRLF and no final newline",
            "metadata:\r\n  name: \"p\"\r\n  labels:\r\n    a: b",
            add("/metadata/annotations", "{\"k\": \"v\"}"),
            "metadata:\r\n  name: \"p\"\r\n  labels:\r\n    a: b\r\n  annotations:\r\n    k: v\r\n",
        ),
        (
            "directives and an explicit start",
            "%YAML 1.2\n---\na: 1\n",
            add("/b", "\"c\""),
            "%YAML 1.2\n---\na: 1\nb: c\n",
        ),
        (
            "a block scalar before the insertion",
            "a:\n  s: |\n    line\n\n  t: 1\n# end\n",
            add("/a/u", "\"v\""),
            "a:\n  s: |\n    line\n\n  t: 1\n  u: v\n# end\n",
        ),
    ];
    for (name, input, patch, expected) in cases {
        assert_eq!(edited(input, patch).as_deref(), Ok(expected), "{name}");
    }
}

#[test]
fn replaces_and_removes_in_place() {
    let input = "env:\n- name: GOMAXPROCS\n  value: '4' # set by deployguard\n- name: GOMEMLIMIT\n  value: \"900MiB\"\n";
    let patch = json!([
        {"op": "replace", "path": "/env/0/value", "value": "2"},
        {"op": "replace", "path": "/env/1/value", "value": "460MiB"},
    ]);
    assert_eq!(
        edited(input, patch).unwrap(),
        "env:\n- name: GOMAXPROCS\n  value: '2' # set by deployguard\n- name: GOMEMLIMIT\n  value: \"460MiB\"\n"
    );
    let patch = json!([{"op": "remove", "path": "/env/0"}]);
    assert_eq!(
        edited(input, patch).unwrap(),
        "env:\n- name: GOMEMLIMIT\n  value: \"900MiB\"\n"
    );
    let patch = json!([{"op": "remove", "path": "/env/1"}, {"op": "remove", "path": "/env/0"}]);
    assert_eq!(edited(input, patch).unwrap(), "env: []\n");
    let record =
        json!([{"op": "remove", "path": "/metadata/annotations/deployguard.io~1injected"}]);
    let only = "metadata:\n  annotations:\n    deployguard.io/injected: x\n  name: p\n";
    assert_eq!(
        edited(only, record.clone()).unwrap(),
        "metadata:\n  annotations: {}\n  name: p\n"
    );
    let annotated = "metadata:\n  annotations:\n    a: b\n    deployguard.io/injected: x\n";
    assert_eq!(
        edited(annotated, record).unwrap(),
        "metadata:\n  annotations:\n    a: b\n"
    );
}

#[test]
fn what_cannot_be_edited_safely_is_refused() {
    let cases = [
        ("x: &a {p: 1}\ny: *a\n", add("/x/q", "1")),
        (
            "a: |\n  text\n",
            json!([{"op": "replace", "path": "/a", "value": "x"}]),
        ),
        // `m: {}` would make the comment swallow the brackets.
        (
            "m: # c\n  only: x\n",
            json!([{"op": "remove", "path": "/m/only"}]),
        ),
        ("e:\n- a\n- b\n", add("/e/0", "\"z\"")),
    ];
    for (input, patch) in cases {
        assert!(edited(input, patch.clone()).is_err(), "{input} {patch}");
    }
}

#[test]
fn list_items_are_reached_through_the_prefix() {
    let input = "kind: List\nitems:\n- kind: Pod\n  metadata:\n    name: p\n";
    let op: PatchOperation = serde_json::from_value(
        json!({"op": "add", "path": "/metadata/annotations", "value": {"k": "v"}}),
    )
    .unwrap();
    let op = Op::from_patch(&["items".to_owned(), "0".to_owned()], &op).unwrap();
    let expected = json!({"kind": "List", "items": [{"kind": "Pod", "metadata": {"name": "p", "annotations": {"k": "v"}}}]});
    assert_eq!(
        edit_document(input, &[op], &expected).unwrap(),
        "kind: List\nitems:\n- kind: Pod\n  metadata:\n    name: p\n    annotations:\n      k: v\n"
    );
}
