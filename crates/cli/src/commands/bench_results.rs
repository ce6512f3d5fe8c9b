//! Per-item benchmark results in a JSON-lines file (`heman bench --results`).
//!
//! Each item is appended and flushed as soon as it is measured, so a long run
//! that is cut off keeps what it measured, and running the same command again
//! resumes after the items already recorded. The first line names the model
//! and the fingerprints of its compilation, the plan's and the parameters'
//! (`keyparams` chooses CKKS parameters by measurement, so compiling the same
//! model again may choose others): results of another compilation are refused
//! rather than mixed in.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::workflow::percentile;

/// The format's version, in the header line (2: one item form for every
/// backend, compared with the plaintext model and with the simulation).
const VERSION: u32 = 2;

/// What one encrypted inference gave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemResult {
    /// The item's name in its evaluation set.
    pub item: String,
    /// The plaintext model's answer is right.
    pub plaintext: bool,
    /// The compiled model's answer simulated in cleartext is right.
    pub simulated: bool,
    /// The decrypted answer is right.
    pub encrypted: bool,
    /// The decrypted answer makes the plaintext model's decision.
    pub same_as_plaintext: bool,
    /// The decrypted answer makes the simulation's decision.
    pub same_as_simulated: bool,
    /// The decrypted output equals the simulated one exactly (TFHE's
    /// integers read right).
    pub same_output: bool,
    /// The largest difference between decrypted and simulated outputs,
    /// over the elements both hold as finite numbers.
    pub deviation: f64,
    /// The decrypted or the simulated output held a value that is not a
    /// finite number (a polynomial run far beyond its interval overflows;
    /// a bootstrap of a value beyond its range decrypts to garbage).
    #[serde(default)]
    pub non_finite: bool,
    /// Inference time on the model owner's side, in seconds.
    pub seconds: f64,
    /// Bytes of the input ciphertext file.
    pub input_bytes: usize,
    /// Bytes of the output ciphertext file.
    pub output_bytes: usize,
    /// Seconds per stage of the compiled model, by name.
    pub stages: Vec<(String, f64)>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Header {
    heman_bench_results: u32,
    model: String,
    model_fingerprint: String,
    /// Empty in files written before parameters were recorded: those are
    /// refused too.
    #[serde(default)]
    params_fingerprint: String,
}

/// The fingerprints of a compilation, as keyparams records them.
#[derive(Debug, Clone, Copy)]
pub struct Fingerprints<'a> {
    pub model: &'a str,
    pub params: &'a str,
}

/// The results file of one benchmarked model (or none).
pub struct ResultsLog {
    path: PathBuf,
    file: Option<File>,
    recorded: HashMap<String, ItemResult>,
}

impl ResultsLog {
    /// No file: every item is measured, nothing is kept.
    pub fn none() -> Self {
        Self {
            path: PathBuf::new(),
            file: None,
            recorded: HashMap::new(),
        }
    }

    /// Opens `path` for `model` compiled to `compilation`: reads the items
    /// already there, or starts the file with its header. A last line cut
    /// off mid-write (a killed run) is dropped.
    pub fn open(path: &Path, model: &str, compilation: Fingerprints) -> Result<Self> {
        let header = Header {
            heman_bench_results: VERSION,
            model: model.to_string(),
            model_fingerprint: compilation.model.to_string(),
            params_fingerprint: compilation.params.to_string(),
        };
        if !path.metadata().is_ok_and(|m| m.len() > 0) {
            return Self::create(path, &header);
        }
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        let (recorded, complete) = read_items(&file, path, &header)?;
        file.set_len(complete)
            .with_context(|| format!("writing {}", path.display()))?;
        if complete == 0 {
            return Self::create(path, &header);
        }
        Ok(Self {
            path: path.to_path_buf(),
            file: Some(file),
            recorded,
        })
    }

    fn create(path: &Path, header: &Header) -> Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let mut file = File::create(path).with_context(|| format!("writing {}", path.display()))?;
        writeln!(file, "{}", serde_json::to_string(header)?)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            file: Some(file),
            recorded: HashMap::new(),
        })
    }

    /// How many items the file already held.
    pub fn resumed(&self) -> usize {
        self.recorded.len()
    }

    /// The result recorded for `item` by an earlier run.
    pub fn recorded(&self, item: &str) -> Option<&ItemResult> {
        self.recorded.get(item)
    }

    /// The result of `item`: recorded by an earlier run, or `measure`d now
    /// and recorded.
    pub fn result_of(
        &mut self,
        item: &str,
        measure: impl FnOnce() -> Result<ItemResult>,
    ) -> Result<ItemResult> {
        if let Some(recorded) = self.recorded(item) {
            return Ok(recorded.clone());
        }
        let result = measure()?;
        self.record(&result)?;
        Ok(result)
    }

    /// Appends `result` and flushes it to disk.
    pub fn record(&mut self, result: &ItemResult) -> Result<()> {
        tracing::info!(
            item = %result.item,
            seconds = result.seconds,
            encrypted_right = result.encrypted,
            same_as_plaintext = result.same_as_plaintext,
            "measured"
        );
        if let Some(file) = &mut self.file {
            writeln!(file, "{}", serde_json::to_string(result)?)
                .and_then(|()| file.sync_data())
                .with_context(|| format!("writing {}", self.path.display()))?;
        }
        Ok(())
    }
}

/// The items of a results file whose header must be `header`, and the
/// length of its complete lines.
fn read_items(
    file: &File,
    path: &Path,
    header: &Header,
) -> Result<(HashMap<String, ItemResult>, u64)> {
    let mut reader = BufReader::new(file);
    let mut recorded = HashMap::new();
    let mut complete = 0u64;
    let mut line = String::new();
    for number in 1.. {
        line.clear();
        let read = reader
            .read_line(&mut line)
            .with_context(|| format!("reading {}", path.display()))?;
        if read == 0 || !line.ends_with('\n') {
            break;
        }
        if number == 1 {
            let found: Header = serde_json::from_str(&line).with_context(|| {
                format!(
                    "{}: line 1 is not a heman bench results header",
                    path.display()
                )
            })?;
            if found.heman_bench_results != header.heman_bench_results {
                bail!(
                    "{}: results in format {}, this heman writes format {}: use another file or remove this one",
                    path.display(),
                    found.heman_bench_results,
                    header.heman_bench_results
                );
            }
            if &found != header {
                bail!(
                    "{}: results of {} compiled to {} under parameters {}, not of {} compiled to {} under parameters {}: use another file or remove this one",
                    path.display(),
                    found.model,
                    short(&found.model_fingerprint),
                    short(&found.params_fingerprint),
                    header.model,
                    short(&header.model_fingerprint),
                    short(&header.params_fingerprint),
                );
            }
        } else {
            let item: ItemResult = serde_json::from_str(&line).with_context(|| {
                format!("{}: line {number} is not an item result", path.display())
            })?;
            recorded.insert(item.item.clone(), item);
        }
        complete += read as u64;
    }
    Ok((recorded, complete))
}

fn short(fingerprint: &str) -> &str {
    match fingerprint {
        "" => "(none recorded)",
        f => &f[..f.len().min(16)],
    }
}

/// The figures of a benchmark row, over its items.
pub struct Summary {
    pub items: usize,
    pub plaintext: f64,
    pub simulated: f64,
    pub encrypted: f64,
    pub same_as_plaintext: usize,
    pub same_as_simulated: usize,
    pub same_output: usize,
    /// The largest difference between a decrypted and a simulated output.
    pub max_deviation: f64,
    /// Items whose decrypted or simulated output was not all finite.
    pub non_finite: usize,
    pub median: f64,
    pub p90: f64,
    pub input_bytes: usize,
    pub output_bytes: usize,
    /// Each stage's name and median seconds.
    pub stage_medians: Vec<(String, f64)>,
}

impl Summary {
    pub fn of(results: &[ItemResult]) -> Self {
        let n = results.len().max(1) as f64;
        let share = |f: &dyn Fn(&ItemResult) -> bool| {
            100.0 * results.iter().filter(|r| f(r)).count() as f64 / n
        };
        let count = |f: &dyn Fn(&ItemResult) -> bool| results.iter().filter(|r| f(r)).count();
        let mut times: Vec<f64> = results.iter().map(|r| r.seconds).collect();
        let names: Vec<String> = results
            .iter()
            .max_by_key(|r| r.stages.len())
            .map(|r| r.stages.iter().map(|(name, _)| name.clone()).collect())
            .unwrap_or_default();
        let stage_medians = names
            .into_iter()
            .enumerate()
            .map(|(s, name)| {
                let mut t: Vec<f64> = results
                    .iter()
                    .filter_map(|r| r.stages.get(s).map(|(_, t)| *t))
                    .collect();
                (name, median(&mut t))
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let last = results.last();
        Self {
            items: results.len(),
            plaintext: share(&|r| r.plaintext),
            simulated: share(&|r| r.simulated),
            encrypted: share(&|r| r.encrypted),
            same_as_plaintext: count(&|r| r.same_as_plaintext),
            same_as_simulated: count(&|r| r.same_as_simulated),
            same_output: count(&|r| r.same_output),
            max_deviation: results.iter().map(|r| r.deviation).fold(0.0, f64::max),
            non_finite: count(&|r| r.non_finite),
            median: quantile(&times, 0.5),
            p90: quantile(&times, 0.9),
            input_bytes: last.map_or(0, |r| r.input_bytes),
            output_bytes: last.map_or(0, |r| r.output_bytes),
            stage_medians,
        }
    }
}

/// The median of unsorted values (0 for none).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    quantile(values, 0.5)
}

/// The `q`-quantile of sorted values (0 for none).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        0.0
    } else {
        percentile(sorted, q)
    }
}

/// Where the results of `model` go: the file itself for one model, a file
/// named after the model inside the folder for a suite.
pub fn results_path(results: Option<&Path>, suite: bool, model: &Path) -> Option<PathBuf> {
    let results = results?;
    if !suite {
        return Some(results.to_path_buf());
    }
    let stem = model
        .file_stem()
        .map_or("model".into(), |s| s.to_string_lossy().into_owned());
    Some(results.join(format!("{stem}.jsonl")))
}

/// Opens the results file of `model` when there is one.
pub fn open_for(
    path: Option<&Path>,
    model: &Path,
    compilation: Fingerprints,
) -> Result<ResultsLog> {
    let Some(path) = path else {
        return Ok(ResultsLog::none());
    };
    let name = model
        .file_name()
        .map_or(String::new(), |f| f.to_string_lossy().into_owned());
    let log = ResultsLog::open(path, &name, compilation)?;
    if log.resumed() > 0 {
        eprintln!(
            "{}: {} items already measured, resuming after them",
            path.display(),
            log.resumed()
        );
    }
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABC: Fingerprints = Fingerprints {
        model: "abc",
        params: "p1",
    };

    fn item(name: &str, seconds: f64) -> ItemResult {
        ItemResult {
            item: name.into(),
            plaintext: true,
            simulated: true,
            encrypted: name != "b",
            same_as_plaintext: true,
            same_as_simulated: true,
            same_output: false,
            deviation: 0.01,
            non_finite: false,
            seconds,
            input_bytes: 10,
            output_bytes: 20,
            stages: vec![
                ("Conv".into(), seconds / 2.0),
                ("Relu".into(), seconds / 2.0),
            ],
        }
    }

    #[test]
    fn a_cut_off_run_resumes_after_its_complete_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        let mut log = ResultsLog::open(&path, "m.onnx", ABC).unwrap();
        log.record(&item("a", 1.0)).unwrap();
        log.record(&item("b", 2.0)).unwrap();
        drop(log);
        // A kill mid-write leaves half a line.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        write!(file, "{{\"item\":\"c\",\"plain").unwrap();
        drop(file);

        let mut log = ResultsLog::open(&path, "m.onnx", ABC).unwrap();
        assert_eq!(log.resumed(), 2);
        assert_eq!(log.recorded("b"), Some(&item("b", 2.0)));
        assert!(log.recorded("c").is_none());
        log.record(&item("c", 3.0)).unwrap();
        drop(log);

        let log = ResultsLog::open(&path, "m.onnx", ABC).unwrap();
        assert_eq!(log.resumed(), 3);
        let results: Vec<ItemResult> = ["a", "b", "c"]
            .iter()
            .map(|n| log.recorded(n).unwrap().clone())
            .collect();
        let summary = Summary::of(&results);
        assert_eq!(summary.items, 3);
        assert!((summary.encrypted - 200.0 / 3.0).abs() < 1e-9);
        assert_eq!(summary.median, 2.0);
        assert_eq!(
            summary.stage_medians,
            vec![("Conv".to_string(), 1.0), ("Relu".to_string(), 1.0)]
        );
    }

    #[test]
    fn results_of_another_compilation_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        ResultsLog::open(&path, "m.onnx", ABC)
            .unwrap()
            .record(&item("a", 1.0))
            .unwrap();
        let other_plan = Fingerprints {
            model: "abd",
            ..ABC
        };
        let err = ResultsLog::open(&path, "m.onnx", other_plan)
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("r.jsonl") && err.contains("abd"), "{err}");
        // The same plan under other parameters (keyparams measured its way
        // to another choice) is another compilation.
        let other_params = Fingerprints {
            params: "p2",
            ..ABC
        };
        let err = ResultsLog::open(&path, "m.onnx", other_params)
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("p1") && err.contains("p2"), "{err}");
        // A file from before parameters were recorded.
        std::fs::write(
            &path,
            "{\"heman_bench_results\":2,\"model\":\"m.onnx\",\"model_fingerprint\":\"abc\"}\n",
        )
        .unwrap();
        let err = ResultsLog::open(&path, "m.onnx", ABC)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("(none recorded)"), "{err}");
        // A file of the first format (one item form per backend).
        std::fs::write(
            &path,
            "{\"heman_bench_results\":1,\"model\":\"m.onnx\",\"model_fingerprint\":\"abc\",\"params_fingerprint\":\"p1\"}\n",
        )
        .unwrap();
        let err = ResultsLog::open(&path, "m.onnx", ABC)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("format 1"), "{err}");
    }

    #[test]
    fn a_foreign_file_is_refused_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        std::fs::write(&path, "not json\n").unwrap();
        let err = ResultsLog::open(&path, "m.onnx", ABC).err().unwrap();
        assert!(format!("{err:#}").contains("line 1"), "{err:#}");
    }
}
