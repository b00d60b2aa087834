//! What the consent and analytics commands share: purposes, feature specs
//! (a file or the embedded example), model kinds, hold-outs, finding model
//! cards, nodes and networks by what a person types, and one-line summaries
//! of model cards and metrics.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use careledger::analytics::example_data::BreastCancerData;
use careledger::analytics::ledger::{CardOrigin, DatasetRef, Holdout, ModelCard};
use careledger::analytics::{FeatureSpec, Metrics, ModelKind};
use careledger::consent::Purpose;
use careledger::entry::{AuthorId, EntryId};
use careledger::node::{AuditRecord, NetworkId, Node};
use serde::Serialize;

use crate::context::{resolve_member, resolve_network};
use crate::output::short;

/// The Wisconsin Diagnostic Breast Cancer CSV (`examples/data/ml/SOURCE.txt`),
/// compiled in so `--example breast-cancer` and the demo run anywhere.
const BREAST_CANCER_CSV: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/data/ml/breast_cancer.csv"
));

/// The example's published test split: CSV row indices, one a line.
const BREAST_CANCER_TEST_ROWS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/data/ml/breast_cancer_split_test_idx.txt"
));

/// A built-in example data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Example {
    /// Wisconsin Diagnostic Breast Cancer as FHIR (patients `wdbc-<row>`):
    /// 30 latest-observation features, label "benign diagnosis".
    BreastCancer,
}

/// The embedded breast-cancer data.
pub fn breast_cancer() -> Result<BreastCancerData> {
    BreastCancerData::parse(BREAST_CANCER_CSV)
        .context("the embedded breast-cancer CSV does not parse")
}

/// The record ids of the breast-cancer example's published test split.
pub fn breast_cancer_test_ids() -> Result<Vec<String>> {
    record_list(
        BREAST_CANCER_TEST_ROWS,
        Some(Example::BreastCancer),
        "the embedded test split",
    )
}

/// `--spec FILE | --example NAME`.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct SpecArgs {
    /// Feature spec JSON file: {"version": 1, "features": [...], "label": ..., "missing": ...}.
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,
    /// Use a built-in example's feature spec.
    #[arg(long, value_enum, value_name = "NAME")]
    pub example: Option<Example>,
}

impl SpecArgs {
    /// The feature spec, read and validated.
    pub fn load(&self) -> Result<FeatureSpec> {
        match (&self.spec, self.example) {
            (Some(path), _) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the feature spec {}", path.display()))?;
                FeatureSpec::from_json(&text)
                    .with_context(|| format!("{} is not a usable feature spec", path.display()))
            }
            (None, Some(Example::BreastCancer)) => Ok(breast_cancer()?.spec()),
            (None, None) => bail!("give a feature spec: --spec FILE or --example NAME"),
        }
    }
}

/// `--model`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelChoice {
    /// Binary logistic regression (L-BFGS, C = 1, scikit-learn's defaults).
    Logistic,
    /// Binary classification tree (Gini, depth at most 8).
    Tree,
    /// k-means with --k clusters (k-means++, 10 runs).
    Kmeans,
    /// Ordinary least squares on the label.
    Linear,
}

impl ModelChoice {
    /// The model kind with the library's default hyperparameters.
    pub fn kind(self, k: u32) -> ModelKind {
        match self {
            ModelChoice::Logistic => ModelKind::logistic_regression(),
            ModelChoice::Tree => ModelKind::decision_tree(),
            ModelChoice::Kmeans => ModelKind::k_means(k),
            ModelChoice::Linear => ModelKind::LinearRegression,
        }
    }
}

/// Parse a purpose code (clap value parser): the three purposes careledger
/// names. Anything else is refused: a mistyped code would make a consent
/// that matches nothing.
pub fn parse_purpose(text: &str) -> Result<Purpose, String> {
    match text.trim().to_ascii_uppercase().as_str() {
        "HRESCH" => Ok(Purpose::Research),
        "TREAT" => Ok(Purpose::Treat),
        "CLMATTCH" => Ok(Purpose::Claims),
        _ => Err(
            "a purpose is HRESCH (research), TREAT (treatment) or CLMATTCH (claim attachment)"
                .into(),
        ),
    }
}

/// `--holdout FRACTION | --holdout-file FILE`.
#[derive(Debug, clap::Args)]
pub struct HoldoutArgs {
    /// Share of rows held out for the card's metrics, picked by pseudonym
    /// (at least 0, below 1).
    #[arg(
        long,
        value_name = "FRACTION",
        default_value_t = 0.2,
        conflicts_with = "holdout_file"
    )]
    pub holdout: f64,
    /// Hold out exactly the records listed, one a line: record ids or, with
    /// --example breast-cancer, CSV row numbers (0-based), as in
    /// examples/data/ml/breast_cancer_split_test_idx.txt.
    #[arg(long, value_name = "FILE")]
    pub holdout_file: Option<PathBuf>,
}

impl HoldoutArgs {
    /// The hold-out rule.
    pub fn holdout(&self, example: Option<Example>) -> Result<Holdout> {
        match &self.holdout_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the hold-out file {}", path.display()))?;
                Ok(Holdout::Records(record_list(
                    &text,
                    example,
                    &path.display().to_string(),
                )?))
            }
            None => {
                if !(0.0..1.0).contains(&self.holdout) {
                    bail!("--holdout must be at least 0 and below 1");
                }
                Ok(Holdout::Fraction(self.holdout))
            }
        }
    }
}

/// Record ids, one a line (blank lines and `#` comments skipped). With an
/// example, a line of digits is a CSV row of it.
fn record_list(text: &str, example: Option<Example>, what: &str) -> Result<Vec<String>> {
    let ids: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| match example {
            Some(Example::BreastCancer) if line.bytes().all(|b| b.is_ascii_digit()) => line
                .parse::<usize>()
                .map(BreastCancerData::patient_id)
                .unwrap_or_else(|_| line.to_owned()),
            _ => line.to_owned(),
        })
        .collect();
    if ids.is_empty() {
        bail!("{what} lists no record");
    }
    Ok(ids)
}

/// A network named by hex id, unique label or unique hex prefix among this
/// node's networks, or else any full network id (at least 16 bytes of hex):
/// a consent may name a network this node is not in.
pub fn resolve_grantee_network(node: &mut Node, text: &str) -> Result<NetworkId> {
    match resolve_network(node, text) {
        Ok(info) => Ok(info.id),
        Err(error) => {
            let lower = text.trim().to_ascii_lowercase();
            let full_hex = lower.len() >= 32
                && lower.len() % 2 == 0
                && lower.bytes().all(|b| b.is_ascii_hexdigit());
            match NetworkId::from_hex(&lower) {
                Some(id) if full_hex => Ok(id),
                _ => Err(error.context(
                    "name the network by a label or id this node knows, or by its full hex id",
                )),
            }
        }
    }
}

/// A node named by its full author id (64 hex digits), or by the name or a
/// unique author-id prefix of a member of `network`.
pub fn resolve_node(node: &mut Node, network: &NetworkId, text: &str) -> Result<AuthorId> {
    let lower = text.trim().to_ascii_lowercase();
    if lower.len() == 64 {
        if let Some(author) = AuthorId::from_hex(&lower) {
            return Ok(author);
        }
    }
    let members = node
        .members(network)
        .context("cannot list the network's members")?;
    resolve_member(&members, text)
        .context("a node outside the network is named by its full author id (64 hex digits)")
}

/// A model card named by its entry id or a unique prefix of it (at least 4
/// hex digits) among the model cards of `network`.
pub fn resolve_card(node: &mut Node, network: &NetworkId, text: &str) -> Result<EntryId> {
    let wanted = text.trim().to_ascii_lowercase();
    if wanted.len() < 4 || !wanted.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!(
            "a model card is named by its entry id (at least 4 hex digits); see `careledger audit`"
        );
    }
    let cards: Vec<EntryId> = node
        .audit(network)
        .context("cannot list the network's model cards")?
        .into_iter()
        .filter(|entry| matches!(entry.record, AuditRecord::ModelCard { .. }))
        .map(|entry| entry.entry)
        .filter(|id| id.to_hex().starts_with(&wanted))
        .collect();
    match cards.as_slice() {
        [one] => Ok(*one),
        [] => bail!(
            "no model card `{wanted}` in this network (sync first if it was just written); \
             see `careledger audit`"
        ),
        many => bail!(
            "{} model cards start with `{wanted}`; give more hex digits",
            many.len()
        ),
    }
}

/// A node's name as a current member of `network` shows it, else its id shortened.
pub fn node_name(node: &mut Node, network: &NetworkId, author: &AuthorId) -> String {
    node.members(network)
        .ok()
        .and_then(|members| members.into_iter().find(|m| m.author == *author))
        .map(|m| m.name)
        .unwrap_or_else(|| format!("{}…", short(&author.to_hex(), 16)))
}

/// The metrics of a card in one line.
pub fn metrics_line(metrics: Option<&Metrics>) -> String {
    match metrics {
        None => "none (no held-out rows)".into(),
        Some(Metrics::Classification(m)) => {
            let right = (m.accuracy * m.rows as f64).round() as u64;
            let auc = m
                .auc
                .map(|auc| format!("{auc:.5}"))
                .unwrap_or_else(|| "undefined (one class)".into());
            format!(
                "accuracy {:.5} ({right}/{} held-out rows), AUC {auc}",
                m.accuracy, m.rows
            )
        }
        Some(Metrics::Clustering(m)) => {
            let silhouette = m
                .silhouette
                .map(|s| format!("{s:.4}"))
                .unwrap_or_else(|| "undefined".into());
            let sizes: Vec<String> = m.cluster_sizes.iter().map(u64::to_string).collect();
            format!(
                "inertia {:.3}, silhouette {silhouette}, cluster sizes {} ({} rows)",
                m.inertia,
                sizes.join("/"),
                m.rows
            )
        }
        Some(Metrics::Regression(m)) => {
            let r2 =
                m.r2.map(|r| format!("{r:.5}"))
                    .unwrap_or_else(|| "undefined".into());
            format!("R² {r2}, RMSE {:.5} ({} rows)", m.rmse, m.rows)
        }
    }
}

/// The test accuracy of classification metrics.
pub fn accuracy(metrics: Option<&Metrics>) -> Option<f64> {
    match metrics {
        Some(Metrics::Classification(m)) => Some(m.accuracy),
        _ => None,
    }
}

/// What a person or a script needs to know of a model card (the full card
/// is `--card-out` or `audit --json`).
#[derive(Debug, Clone, Serialize)]
pub struct CardSummary {
    /// The model card entry id.
    pub entry: String,
    /// `trained` or `federated`.
    pub origin: &'static str,
    /// Federated: the round.
    pub round: Option<String>,
    /// Model kind name.
    pub model: &'static str,
    /// The network whose consent grants were required (hex).
    pub grantee_network: String,
    /// Purpose code.
    pub purpose: String,
    /// Dataset commitment (trained cards).
    pub dataset: Option<DatasetRef>,
    /// Records left out by consent.
    pub excluded_by_consent: u64,
    /// Consents relied on.
    pub consents_relied_on: usize,
    /// Training rows.
    pub training_rows: u64,
    /// Held-out rows.
    pub test_rows: u64,
    /// Metrics on the held-out rows.
    pub metrics: Option<Metrics>,
    /// SHA-256 of the model bytes.
    pub model_hash: String,
    /// Digest of the checkpoint the dataset was read at.
    pub checkpoint_digest: String,
    /// Feature spec hash.
    pub feature_spec_hash: String,
}

impl CardSummary {
    /// Summarise the card of entry `entry`.
    pub fn new(entry: &EntryId, card: &ModelCard) -> Self {
        let (origin, round) = match &card.origin {
            CardOrigin::Trained => ("trained", None),
            CardOrigin::Federated { round, .. } => ("federated", Some(round.clone())),
        };
        CardSummary {
            entry: entry.to_hex(),
            origin,
            round,
            model: card.kind.name(),
            grantee_network: card.grantee_network.clone(),
            purpose: card.purpose.clone(),
            dataset: card.dataset.clone(),
            excluded_by_consent: card.excluded_by_consent,
            consents_relied_on: card.consent_ids.len(),
            training_rows: card.training_rows,
            test_rows: card.test_rows,
            metrics: card.metrics.clone(),
            model_hash: card.model_hash.clone(),
            checkpoint_digest: card.checkpoint_digest.clone(),
            feature_spec_hash: card.feature_spec_hash.clone(),
        }
    }

    /// The summary as `label value` lines.
    pub fn lines(&self) -> Vec<(&'static str, String)> {
        let mut lines = vec![
            ("model card", self.entry.clone()),
            (
                "model",
                match &self.round {
                    Some(round) => format!("{}, federated round {round}", self.model),
                    None => self.model.to_owned(),
                },
            ),
        ];
        if let Some(dataset) = &self.dataset {
            lines.push((
                "dataset",
                format!("{} records, root {}", dataset.size, dataset.root),
            ));
        }
        lines.extend([
            (
                "consent",
                format!(
                    "{} relied on for {}, {} record(s) excluded",
                    self.consents_relied_on, self.purpose, self.excluded_by_consent
                ),
            ),
            (
                "rows",
                format!(
                    "{} training, {} held out",
                    self.training_rows, self.test_rows
                ),
            ),
            (
                "metrics",
                match (&self.round, &self.metrics) {
                    (Some(_), None) => {
                        "none of its own (each site's are in its model update)".to_owned()
                    }
                    (_, metrics) => metrics_line(metrics.as_ref()),
                },
            ),
            ("model hash", self.model_hash.clone()),
            ("checkpoint", self.checkpoint_digest.clone()),
        ]);
        lines
    }
}

/// Print `label value` lines aligned.
pub fn print_lines(lines: &[(&str, String)]) -> Result<()> {
    let width = lines
        .iter()
        .map(|(label, _)| label.len())
        .max()
        .unwrap_or(0);
    for (label, value) in lines {
        outln!("{label:<width$}  {value}")?;
    }
    Ok(())
}

/// Write `bytes` to `path`, naming the file in the error.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purposes_are_the_three_codes_in_any_case() {
        assert_eq!(parse_purpose("hresch"), Ok(Purpose::Research));
        assert_eq!(parse_purpose("TREAT"), Ok(Purpose::Treat));
        assert_eq!(parse_purpose(" CLMATTCH "), Ok(Purpose::Claims));
        assert!(parse_purpose("HRESH").is_err());
    }

    #[test]
    fn row_numbers_stand_for_example_patients_only_with_the_example() {
        let text = "# test rows\n3\n\nwdbc-7\n";
        assert_eq!(
            record_list(text, Some(Example::BreastCancer), "f").unwrap(),
            ["wdbc-3", "wdbc-7"]
        );
        assert_eq!(record_list(text, None, "f").unwrap(), ["3", "wdbc-7"]);
        let error = record_list("# nothing\n", None, "the file").unwrap_err();
        assert_eq!(error.to_string(), "the file lists no record");
    }

    #[test]
    fn the_embedded_split_is_143_distinct_example_patients() {
        let ids = breast_cancer_test_ids().unwrap();
        assert_eq!(ids.len(), 143);
        let rows = breast_cancer().unwrap().len();
        let distinct: std::collections::BTreeSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), 143);
        assert!(ids
            .iter()
            .all(|id| BreastCancerData::row_of(id).is_some_and(|row| row < rows)));
    }

    #[test]
    fn holdout_fraction_must_be_below_one() {
        let args = HoldoutArgs {
            holdout: 1.0,
            holdout_file: None,
        };
        assert!(args.holdout(None).is_err());
        let args = HoldoutArgs {
            holdout: 0.25,
            holdout_file: None,
        };
        assert_eq!(args.holdout(None).unwrap(), Holdout::Fraction(0.25));
    }
}
