//! A scrape of the metrics port and a strict reader of the OpenMetrics text it serves.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::wait::PATIENCE;

/// Name, labels and value of one sample.
pub type Sample = (String, BTreeMap<String, String>, f64);

/// Samples of one scrape, after checking the text is well-formed OpenMetrics.
pub struct Metrics {
    pub text: String,
    pub samples: Vec<Sample>,
}

impl Metrics {
    /// The sum of the samples named `name` whose labels include all of `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| v)
            .sum()
    }
}

pub async fn scrape(addr: SocketAddr) -> Metrics {
    let response = reqwest::Client::builder()
        .no_proxy()
        .timeout(PATIENCE)
        .build()
        .unwrap()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text; version=1.0.0"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    let samples = parse_openmetrics(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    Metrics { text, samples }
}

/// A strict reader of the OpenMetrics text format as far as these metrics use it: every
/// sample belongs to a family declared by `# TYPE`, names and labels are well-formed,
/// values are numbers, and the text ends with `# EOF`.
pub fn parse_openmetrics(text: &str) -> Result<Vec<Sample>, String> {
    let valid_name = |name: &str| {
        !name.is_empty()
            && name.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    let mut families: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = Vec::new();
    let mut saw_eof = false;
    for line in text.lines() {
        if saw_eof {
            return Err(format!("text after # EOF: {line:?}"));
        }
        if line == "# EOF" {
            saw_eof = true;
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (keyword, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            if !valid_name(name) {
                return Err(format!("bad metric name in {line:?}"));
            }
            match keyword {
                "TYPE" => {
                    let kind = parts.next().unwrap_or("");
                    if ![
                        "counter",
                        "gauge",
                        "histogram",
                        "info",
                        "stateset",
                        "unknown",
                        "summary",
                        "gaugehistogram",
                    ]
                    .contains(&kind)
                    {
                        return Err(format!("bad type in {line:?}"));
                    }
                    families.insert(name.to_owned(), kind.to_owned());
                }
                "HELP" | "UNIT" => {}
                _ => return Err(format!("unknown comment {line:?}")),
            }
            continue;
        }
        let (name_and_labels, value) = line
            .rsplit_once(' ')
            .ok_or_else(|| format!("no value in {line:?}"))?;
        let value: f64 = value
            .parse()
            .map_err(|_| format!("bad value in {line:?}"))?;
        let (name, labels) = match name_and_labels.split_once('{') {
            None => (name_and_labels, BTreeMap::new()),
            Some((name, labels)) => {
                let labels = labels
                    .strip_suffix('}')
                    .ok_or_else(|| format!("unclosed labels in {line:?}"))?;
                let mut parsed = BTreeMap::new();
                for pair in labels.split("\",").filter(|p| !p.is_empty()) {
                    let (key, value) = pair
                        .split_once("=\"")
                        .ok_or_else(|| format!("bad label in {line:?}"))?;
                    if !valid_name(key) {
                        return Err(format!("bad label name in {line:?}"));
                    }
                    parsed.insert(key.to_owned(), value.trim_end_matches('"').to_owned());
                }
                (name, parsed)
            }
        };
        if !valid_name(name) {
            return Err(format!("bad sample name in {line:?}"));
        }
        let family = families
            .iter()
            .filter(|(family, _)| name.starts_with(family.as_str()))
            .max_by_key(|(family, _)| family.len())
            .ok_or_else(|| format!("sample without a # TYPE: {line:?}"))?;
        let suffix = &name[family.0.len()..];
        let allowed: &[&str] = match family.1.as_str() {
            "counter" => &["_total", "_created"],
            "gauge" => &[""],
            "histogram" => &["_bucket", "_sum", "_count", "_created"],
            _ => &["", "_total", "_bucket", "_sum", "_count", "_info"],
        };
        if !allowed.contains(&suffix) {
            return Err(format!(
                "sample {name} does not fit its {} family",
                family.1
            ));
        }
        samples.push((name.to_owned(), labels, value));
    }
    if !saw_eof {
        return Err("no # EOF at the end".to_owned());
    }
    Ok(samples)
}
