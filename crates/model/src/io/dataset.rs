//! Sets of input arrays: calibration sets (`.zip` / `.npz` archives of `.npy`, a
//! directory of `.npy`, or one `.npy` of stacked samples) and labelled evaluation sets.

use std::cmp::Ordering;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{ModelError, Result};
use crate::io::npy::{parse_npy, read_npy};
use crate::tensor::Tensor;

/// One array of a set, with the name it had in the archive or directory.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The file or member name without its `.npy` extension or directories.
    pub name: String,
    /// The array's contents.
    pub tensor: Tensor,
}

/// Loads every `.npy` of an archive (`.zip`, `.npz`) or directory, in natural
/// name order (`2.npy` before `10.npy`); or, for one `.npy` file, its samples
/// stacked along the first axis (`[N, ...]` gives N samples `[1, ...]`, named
/// `0` .. `N-1`: the batch axis of a model's input is kept).
///
/// # Errors
/// [`ModelError::Io`] when the directory or archive cannot be read,
/// [`ModelError::Dataset`] for a damaged archive, one without `.npy` arrays or
/// an array without a first axis, and the errors of [`parse_npy`] for a
/// malformed array.
pub fn load_arrays(path: &Path) -> Result<Vec<Sample>> {
    let mut samples = if path.is_dir() {
        load_directory(path)?
    } else if path.extension().is_some_and(|e| e == "npy") {
        split_stacked(path, read_npy(path)?)?
    } else {
        load_archive(path)?
    };
    if samples.is_empty() {
        return Err(dataset_error(path, "holds no .npy arrays"));
    }
    samples.sort_by(|a, b| natural_cmp(&a.name, &b.name));
    Ok(samples)
}

/// The samples of an array stacked along its first axis, each keeping that
/// axis (of 1), named `0` .. `N-1`; `path` names the array in errors.
///
/// # Errors
/// [`ModelError::Dataset`] for a scalar.
pub fn split_stacked(path: &Path, stacked: Tensor) -> Result<Vec<Sample>> {
    let Some((&count, rest)) = stacked.shape().split_first() else {
        return Err(dataset_error(
            path,
            "is a scalar, not samples stacked along a first axis",
        ));
    };
    let each = crate::tensor::volume(rest);
    let mut shape = vec![1];
    shape.extend_from_slice(rest);
    Ok(stacked
        .data()
        .chunks_exact(each.max(1))
        .take(count)
        .enumerate()
        .map(|(i, chunk)| Sample {
            name: i.to_string(),
            tensor: Tensor::new(shape.clone(), chunk.to_vec()),
        })
        .collect())
}

fn load_directory(dir: &Path) -> Result<Vec<Sample>> {
    let entries = std::fs::read_dir(dir).map_err(crate::error::io(dir))?;
    let mut samples = Vec::new();
    for entry in entries {
        let path = entry.map_err(crate::error::io(dir))?.path();
        if path.extension().is_some_and(|e| e == "npy") {
            let name = file_stem(&path);
            samples.push(Sample {
                name,
                tensor: read_npy(&path)?,
            });
        }
    }
    Ok(samples)
}

fn load_archive(path: &Path) -> Result<Vec<Sample>> {
    let file = std::fs::File::open(path).map_err(crate::error::io(path))?;
    let mut archive = zip::ZipArchive::new(file)
        .map_err(|e| dataset_error(path, format!("not a .zip/.npz archive: {e}")))?;
    let mut samples = Vec::new();
    for index in 0..archive.len() {
        let mut member = archive
            .by_index(index)
            .map_err(|e| dataset_error(path, format!("damaged archive: {e}")))?;
        let name = member.name().to_string();
        if member.is_dir() || !name.ends_with(".npy") || name.contains("__MACOSX") {
            continue;
        }
        let mut bytes = Vec::with_capacity(member.size() as usize);
        member
            .read_to_end(&mut bytes)
            .map_err(|e| dataset_error(path, format!("member '{name}': {e}")))?;
        let origin = path.join(&name);
        samples.push(Sample {
            name: file_stem(Path::new(&name)),
            tensor: parse_npy(&bytes, &origin)?,
        });
    }
    Ok(samples)
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub(crate) fn dataset_error(path: &Path, message: impl Into<String>) -> ModelError {
    ModelError::Dataset {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Compares names with digit runs ordered by value, so that numbered files
/// sort as people number them (`2` before `10`).
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    while let (Some(&x), Some(&y)) = (a.first(), b.first()) {
        if x.is_ascii_digit() && y.is_ascii_digit() {
            let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
            let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
            let na = std::str::from_utf8(&a[..da])
                .unwrap_or("0")
                .trim_start_matches('0');
            let nb = std::str::from_utf8(&b[..db])
                .unwrap_or("0")
                .trim_start_matches('0');
            let ord = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
            if ord != Ordering::Equal {
                return ord;
            }
            a = &a[da..];
            b = &b[db..];
        } else {
            if x != y {
                return x.cmp(&y);
            }
            a = &a[1..];
            b = &b[1..];
        }
    }
    a.len().cmp(&b.len())
}

/// What an evaluation set asks of a model's output.
#[derive(Debug, Clone)]
pub enum Task {
    /// Predicted class = argmax of the output; compared with the label.
    Classification {
        /// The expected class of each input, in input order.
        labels: Vec<usize>,
    },
    /// Face verification (HE-MAN's LFW scoring): the output embedding and the
    /// reference embedding are normalised; "same person" when their cosine
    /// similarity exceeds `threshold`.
    Verification {
        /// The reference embedding each input's output is compared with.
        references: Vec<Tensor>,
        /// Whether each input shows the same person as its reference.
        same: Vec<bool>,
        /// The cosine similarity above which a pair counts as the same person.
        threshold: f64,
    },
}

/// Inputs with what the model should answer for each.
#[derive(Debug, Clone)]
pub struct LabelledSet {
    /// The directory the set was loaded from.
    pub root: PathBuf,
    /// The model inputs, in natural name order.
    pub inputs: Vec<Sample>,
    /// What counts as a right answer for each input.
    pub task: Task,
}

/// HE-MAN's LFW decision threshold on the cosine similarity.
pub const LFW_THRESHOLD: f64 = 0.3;

impl LabelledSet {
    /// Loads an evaluation set in one of HE-MAN's layouts, keeping the first
    /// `limit` items:
    /// - `<label>-<k>.npy` files (the demo's test data);
    /// - `<i>.npy` files with `labels.npy` (MNIST);
    /// - `inputs.npy`, the samples stacked along its first axis, with `labels.npy`;
    /// - `data/<i>.npy` with `verification/<i>.npy` (LFW pairs; pair `i` is the
    ///   same person when `i` is even).
    ///
    /// # Errors
    /// [`ModelError::Dataset`] when `root` is not a directory, holds no
    /// arrays, or names its files in none of these layouts, or when a label
    /// or reference is missing; the errors of [`load_arrays`] and
    /// [`read_npy`] for unreadable or malformed arrays.
    pub fn load(root: &Path, limit: Option<usize>) -> Result<Self> {
        if !root.is_dir() {
            return Err(dataset_error(root, "evaluation set must be a directory"));
        }
        let take = |mut v: Vec<Sample>| {
            if let Some(limit) = limit {
                v.truncate(limit);
            }
            v
        };
        let lfw_data = root.join("data");
        if lfw_data.is_dir() && root.join("verification").is_dir() {
            return Self::load_pairs(root, take(load_arrays(&lfw_data)?));
        }
        let labels_path = root.join("labels.npy");
        let stacked = root.join("inputs.npy");
        if stacked.is_file() && labels_path.is_file() {
            let inputs = split_stacked(&stacked, read_npy(&stacked)?)?;
            return Self::load_numbered(root, take(inputs), &labels_path);
        }
        let mut all = load_arrays(root)?;
        if labels_path.is_file() {
            all.retain(|s| s.name != "labels");
            return Self::load_numbered(root, take(all), &labels_path);
        }
        Self::load_named(root, take(all))
    }

    /// LFW pairs: `data/<i>.npy` with `verification/<i>.npy`, the same
    /// person when `i` is even.
    fn load_pairs(root: &Path, inputs: Vec<Sample>) -> Result<Self> {
        let lfw_data = root.join("data");
        let mut references = Vec::with_capacity(inputs.len());
        let mut same = Vec::with_capacity(inputs.len());
        for sample in &inputs {
            let reference = root
                .join("verification")
                .join(format!("{}.npy", sample.name));
            references.push(read_npy(&reference)?);
            let index: usize = sample.name.parse().map_err(|_| {
                dataset_error(
                    &lfw_data,
                    format!("'{}.npy' is not a pair number", sample.name),
                )
            })?;
            same.push(index.is_multiple_of(2));
        }
        Ok(Self {
            root: root.to_path_buf(),
            inputs,
            task: Task::Verification {
                references,
                same,
                threshold: LFW_THRESHOLD,
            },
        })
    }

    /// MNIST: `<i>.npy` images labelled by entry `i` of `labels.npy`.
    fn load_numbered(root: &Path, inputs: Vec<Sample>, labels_path: &Path) -> Result<Self> {
        let labels = read_npy(labels_path)?;
        if labels.len() < inputs.len() {
            return Err(dataset_error(
                labels_path,
                format!("{} labels for {} inputs", labels.len(), inputs.len()),
            ));
        }
        let mut picked = Vec::with_capacity(inputs.len());
        for sample in &inputs {
            let index: usize = sample.name.parse().map_err(|_| {
                dataset_error(
                    root,
                    format!("'{}.npy' is not an image number", sample.name),
                )
            })?;
            let label =
                labels.data().get(index).copied().ok_or_else(|| {
                    dataset_error(labels_path, format!("no label for image {index}"))
                })?;
            picked.push(label as usize);
        }
        Ok(Self {
            root: root.to_path_buf(),
            inputs,
            task: Task::Classification { labels: picked },
        })
    }

    /// The demo's `<label>-<k>.npy` files.
    fn load_named(root: &Path, inputs: Vec<Sample>) -> Result<Self> {
        let labels = inputs
            .iter()
            .map(|s| {
                s.name
                    .split('-')
                    .next()
                    .and_then(|l| l.parse().ok())
                    .ok_or_else(|| {
                        dataset_error(
                            root,
                            format!(
                                "'{}.npy': expected '<label>-<k>.npy' names, 'labels.npy', or data/ + verification/",
                                s.name
                            ),
                        )
                    })
            })
            .collect::<Result<Vec<usize>>>()?;
        Ok(Self {
            root: root.to_path_buf(),
            inputs,
            task: Task::Classification { labels },
        })
    }

    /// Whether the model's `output` for item `index` is right.
    ///
    /// # Panics
    /// When `index` is not an item of the set.
    pub fn is_correct(&self, index: usize, output: &Tensor) -> bool {
        match &self.task {
            Task::Classification { labels } => output.argmax() == Some(labels[index]),
            Task::Verification {
                references,
                same,
                threshold,
            } => (cosine_similarity(output, &references[index]) > *threshold) == same[index],
        }
    }
}

impl LabelledSet {
    /// Whether two outputs for item `index` make the same decision: the
    /// same class, or the same verdict on the pair. This is what matters when
    /// comparing encrypted with plaintext inference, whatever the label.
    ///
    /// # Panics
    /// For a verification set, when `index` is not an item of the set.
    pub fn same_decision(&self, index: usize, a: &Tensor, b: &Tensor) -> bool {
        match &self.task {
            Task::Classification { .. } => a.argmax() == b.argmax(),
            Task::Verification {
                references,
                threshold,
                ..
            } => {
                let verdict = |t: &Tensor| cosine_similarity(t, &references[index]) > *threshold;
                verdict(a) == verdict(b)
            }
        }
    }

    /// What the set scores: "accuracy" or "verification accuracy".
    pub fn task_name(&self) -> &'static str {
        match self.task {
            Task::Classification { .. } => "accuracy",
            Task::Verification { .. } => "verification accuracy",
        }
    }
}

/// Cosine similarity of two tensors taken as flat vectors; 0 (rather than
/// NaN) when either is all zeros.
pub fn cosine_similarity(a: &Tensor, b: &Tensor) -> f64 {
    let dot: f64 = a.data().iter().zip(b.data()).map(|(x, y)| x * y).sum();
    let na = a.data().iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb = b.data().iter().map(|x| x * x).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_npy_of_stacked_samples_is_a_set() {
        let dir = std::env::temp_dir().join(format!("heman-stacked-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("calibration.npy");
        let data: Vec<f64> = (0..24).map(f64::from).collect();
        crate::io::npy::write_npy(
            &path,
            &Tensor::new(vec![3, 2, 4], data),
            crate::io::npy::NpyDtype::F32,
        )
        .unwrap();
        let samples = load_arrays(&path).unwrap();
        assert_eq!(samples.len(), 3);
        assert_eq!(samples[2].name, "2");
        assert_eq!(samples[2].tensor.shape(), &[1, 2, 4]);
        assert_eq!(samples[2].tensor.data()[0], 16.0);
        // Beside labels.npy, as inputs.npy, it is an evaluation set.
        crate::io::npy::write_npy(
            &dir.join("inputs.npy"),
            &Tensor::new(vec![3, 2, 4], (0..24).map(f64::from).collect()),
            crate::io::npy::NpyDtype::F32,
        )
        .unwrap();
        crate::io::npy::write_npy(
            &dir.join("labels.npy"),
            &Tensor::new(vec![3], vec![0.0, 1.0, 1.0]),
            crate::io::npy::NpyDtype::F32,
        )
        .unwrap();
        std::fs::remove_file(&path).unwrap();
        let set = LabelledSet::load(&dir, Some(2)).unwrap();
        assert_eq!(set.inputs.len(), 2);
        assert!(set.is_correct(1, &Tensor::new(vec![2], vec![0.0, 1.0])));
        // A scalar has no samples to split.
        let scalar = dir.join("scalar.npy");
        crate::io::npy::write_npy(&scalar, &Tensor::scalar(1.0), crate::io::npy::NpyDtype::F32)
            .unwrap();
        assert!(load_arrays(&scalar).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn natural_order() {
        let mut names = vec!["10", "2", "1-10", "1-9", "01000", "999"];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(names, vec!["1-9", "1-10", "2", "10", "999", "01000"]);
    }
}
