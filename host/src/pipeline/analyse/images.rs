//! Image competitions: a table of ids and labels whose rows name image files in folders, often
//! with no test table at all (the rows to predict are the sample submission's ids, each naming
//! an image of the test folder).
//!
//! For each role (the training rows, the rows to predict) it looks for one folder and one rule
//! that turn every row's value into an existing file: the value is a file name in the folder
//! (`a1.png`) or its stem (`a1`, with the one extension the folder's images share). Only a
//! mapping that holds for every row checked is taken; two that do are an error naming both,
//! since picking one could train on the wrong pictures. Labels held only by class-named
//! folders (`train/cat/1.png`) are refused with a message: a holdout could not hide them.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use super::types::{DataFile, ImageFolder, ImageSet, TableProfile};
use super::{AnalyseError, profile};
use crate::text::{quote, quote_list};

/// Extensions of the images the baseline reads (with Pillow, in the guest).
const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "bmp", "gif", "tif", "tiff"];
/// Rows of a table whose values are checked against the files: enough to rule out chance.
const CHECKED_ROWS: usize = 2_000;
/// Images whose header is read for the sizes the analysis reports.
const SIZED: usize = 5;
/// Bytes of an image read to find its size: the header is near the start.
const HEADER_BYTES: u64 = 64 * 1024;
/// Names a message lists.
const LISTED: usize = 6;

/// The image files of `files`.
pub(super) fn image_files(files: &[DataFile]) -> Vec<&DataFile> {
    files
        .iter()
        .filter(|f| extension(&f.path).is_some())
        .collect()
}

/// The image extension of `path`, lowercase, if it has one.
fn extension(path: &str) -> Option<String> {
    let ext = Path::new(path)
        .extension()?
        .to_string_lossy()
        .to_lowercase();
    IMAGE_EXTENSIONS.contains(&ext.as_str()).then_some(ext)
}

/// The images below each folder, by folder (relative, `""` for the competition folder) and
/// then by file name.
struct Folders<'a> {
    by_folder: BTreeMap<String, BTreeMap<String, &'a DataFile>>,
}

impl<'a> Folders<'a> {
    fn new(images: &[&'a DataFile]) -> Self {
        let mut by_folder: BTreeMap<String, BTreeMap<String, &DataFile>> = BTreeMap::new();
        for image in images {
            let (folder, name) = image.path.rsplit_once('/').unwrap_or(("", &image.path));
            by_folder
                .entry(folder.to_owned())
                .or_default()
                .insert(name.to_owned(), image);
        }
        Self { by_folder }
    }

    /// Each (folder, suffix) in which every value names a file: as it is (suffix `""`) or as
    /// the stem of a file with the folder's one extension.
    fn matches(&self, values: &[String]) -> Vec<(String, String)> {
        let mut found = Vec::new();
        if values.is_empty() {
            return found;
        }
        for (folder, names) in &self.by_folder {
            if values.iter().all(|v| names.contains_key(v)) {
                found.push((folder.clone(), String::new()));
                continue;
            }
            let mut extensions: Vec<String> = names.keys().filter_map(|n| extension(n)).collect();
            extensions.sort();
            extensions.dedup();
            if extensions.len() == 1 {
                // The extension as the files spell it (`.PNG` stays `.PNG`).
                let Some(spelled) = names
                    .keys()
                    .find_map(|n| n.rsplit_once('.').map(|(_, e)| format!(".{e}")))
                else {
                    continue;
                };
                if values
                    .iter()
                    .all(|v| names.contains_key(&format!("{v}{spelled}")))
                {
                    found.push((folder.clone(), spelled));
                }
            }
        }
        found
    }
}

/// A role's values: those of `column` in `table`, at most [`CHECKED_ROWS`]; none when the
/// values could not name files (numbers with a fraction, paths leaving the folder).
fn values(dir: &Path, table: &TableProfile, column: &str) -> Result<Vec<String>, AnalyseError> {
    let values = profile::column_values(dir, &table.path, column, CHECKED_ROWS)?;
    if values
        .iter()
        .any(|v| v.contains('/') || v.contains('\\') || v == ".." || v.is_empty())
    {
        return Ok(Vec::new());
    }
    Ok(values)
}

/// The rule for one role: the column and folder whose every value names an image.
///
/// Ids that restart in each folder (`train/0.png`, `test/0.png`) fit both folders; then the
/// folder `not` (the training folder, for the rows to predict) or, for the training rows, a
/// folder named for testing is set aside while another fits.
fn role(
    dir: &Path,
    folders: &Folders<'_>,
    table: &TableProfile,
    columns: &[&str],
    what: &str,
    not: Option<&str>,
) -> Result<Option<ImageFolder>, AnalyseError> {
    let mut found = Vec::new();
    for column in columns {
        let values = values(dir, table, column)?;
        for (folder, suffix) in folders.matches(&values) {
            found.push(((*column).to_owned(), folder, suffix));
        }
    }
    let set_aside = |folder: &str| match not {
        Some(not) => folder == not,
        None => folder
            .rsplit('/')
            .next()
            .is_some_and(|name| name.to_lowercase().contains("test")),
    };
    if found.len() > 1 && found.iter().any(|(_, folder, _)| !set_aside(folder)) {
        found.retain(|(_, folder, _)| !set_aside(folder));
    }
    match found.as_slice() {
        [] => Ok(None),
        [(column, folder, suffix)] => Ok(Some(ImageFolder {
            folder: folder.clone(),
            column: column.clone(),
            suffix: suffix.clone(),
            count: folders.by_folder.get(folder).map_or(0, BTreeMap::len),
        })),
        several => {
            let named: Vec<String> = several
                .iter()
                .take(LISTED)
                .map(|(column, folder, _)| {
                    format!("column {} in folder {}", quote(column), quote(folder))
                })
                .collect();
            Err(AnalyseError::Invalid(format!(
                "cannot tell which images are the {what}: the values of {} name image files in \
                 more than one place ({}); keep one folder of images per role",
                table.path,
                named.join("; ")
            )))
        }
    }
}

/// The competition's image layout, if its rows name images.
///
/// `test` is the table to predict when there is one; without one the sample submission's id
/// column names the test images.
///
/// # Errors
/// When images are there but the rows cannot be matched to them without a guess (two
/// folders that fit, labels only in class-named folders), with what was found.
pub(super) fn find(
    dir: &Path,
    files: &[DataFile],
    train: &TableProfile,
    test: Option<&TableProfile>,
    sample: &TableProfile,
    id_column: &str,
) -> Result<Option<ImageSet>, AnalyseError> {
    let images = image_files(files);
    if images.is_empty() {
        return Ok(None);
    }
    let folders = Folders::new(&images);
    // The id column first: most image competitions name each picture by its row's id.
    let mut train_columns: Vec<&str> = vec![id_column];
    train_columns.extend(
        train
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .filter(|c| *c != id_column),
    );
    train_columns.retain(|c| train.columns.iter().any(|t| t.name == *c));
    let Some(train_role) = role(
        dir,
        &folders,
        train,
        &train_columns,
        "training images",
        None,
    )?
    else {
        return without_a_match(&folders, train, test.is_some(), &images);
    };
    let test_role = match test {
        Some(table) if table.columns.iter().any(|c| c.name == train_role.column) => role(
            dir,
            &folders,
            table,
            &[train_role.column.as_str()],
            "images to predict",
            Some(&train_role.folder),
        )?,
        _ => role(
            dir,
            &folders,
            sample,
            &[id_column],
            "images to predict",
            Some(&train_role.folder),
        )?,
    };
    let Some(test_role) = test_role else {
        let source = test.map_or(sample.path.as_str(), |t| t.path.as_str());
        return Err(AnalyseError::Invalid(format!(
            "the training rows name the images of folder {:?} (column {:?}), but the values of \
             {source} name no image folder: expected each test id to name a file such as \
             test/<id>{}",
            train_role.folder,
            train_role.column,
            if train_role.suffix.is_empty() {
                ""
            } else {
                &train_role.suffix
            }
        )));
    };
    let extension = extension(
        &folders
            .by_folder
            .get(&train_role.folder)
            .and_then(|names| names.values().next())
            .map_or(String::new(), |f| f.path.clone()),
    )
    .unwrap_or_default();
    let sizes = folders
        .by_folder
        .get(&train_role.folder)
        .into_iter()
        .flat_map(|names| names.values())
        .take(SIZED)
        .filter_map(|f| image_size(&dir.join(&f.path)))
        .collect();
    let set = ImageSet {
        train: train_role,
        test: test_role,
        extension,
        sizes,
    };
    tracing::info!(images = %set, "the rows name image files");
    Ok(Some(set))
}

/// What to do with images no training column names: side data beside a test table (the
/// tables carry the task), else an error saying what was found.
fn without_a_match(
    folders: &Folders<'_>,
    train: &TableProfile,
    has_test_table: bool,
    images: &[&DataFile],
) -> Result<Option<ImageSet>, AnalyseError> {
    // Folders named after the classes of some training column: the labels are the folders.
    let class_folders: Vec<&str> = folders
        .by_folder
        .keys()
        .filter_map(|f| f.rsplit('/').next())
        .collect();
    let labelled_by_folder = train.columns.iter().any(|c| {
        c.examples.len() >= 2
            && c.examples
                .iter()
                .filter(|e| class_folders.contains(&e.as_str()))
                .count()
                >= 2
    });
    if labelled_by_folder {
        return Err(AnalyseError::Invalid(format!(
            "the images sit in {} folders ({}), which look like one folder per class: labels \
             held only by folder names are not supported (a holdout could not hide them); \
             list each training image and its label in {} instead",
            folders.by_folder.len(),
            quote_list(folders.by_folder.keys().map(String::as_str), LISTED),
            train.path
        )));
    }
    if has_test_table {
        return Ok(None);
    }
    Err(AnalyseError::Invalid(format!(
        "there is no test table, and no column of {} names the {} image files found (e.g. {}): \
         expected a column of file names (a1.png) or of ids that are their stems (a1)",
        train.path,
        images.len(),
        quote_list(images.iter().take(3).map(|f| f.path.as_str()), 3)
    )))
}

/// Why a competition of pictures without a training table cannot be analysed: its labels
/// could only be folder names (`train/cat/1.png`), which a holdout could not hide.
pub(super) fn no_labels_table(files: &[DataFile]) -> AnalyseError {
    let images = image_files(files);
    let folders = Folders::new(&images);
    AnalyseError::Invalid(format!(
        "no table of labels found (such as train.csv or labels.csv) beside {} pictures in {} \
         folders ({}): labels held only by folder names are not supported (a holdout could not \
         hide them); list each training picture and its label in train.csv",
        images.len(),
        folders.by_folder.len(),
        quote_list(folders.by_folder.keys().map(String::as_str), LISTED)
    ))
}

/// The width and height of a PNG, JPEG, GIF or BMP file, from its header; `None` when it is
/// not one of those or the header is cut short.
pub(crate) fn image_size(path: &Path) -> Option<[u32; 2]> {
    let mut head = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(HEADER_BYTES)
        .read_to_end(&mut head)
        .ok()?;
    header_size(&head)
}

fn header_size(b: &[u8]) -> Option<[u32; 2]> {
    let be32 = |i: usize| Some(u32::from_be_bytes(b.get(i..i + 4)?.try_into().ok()?));
    let be16 = |i: usize| {
        Some(u32::from(u16::from_be_bytes(
            b.get(i..i + 2)?.try_into().ok()?,
        )))
    };
    let le16 = |i: usize| {
        Some(u32::from(u16::from_le_bytes(
            b.get(i..i + 2)?.try_into().ok()?,
        )))
    };
    let le32 = |i: usize| Some(i32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?));
    if b.starts_with(b"\x89PNG\r\n\x1a\n") && b.get(12..16) == Some(b"IHDR") {
        return Some([be32(16)?, be32(20)?]);
    }
    if b.starts_with(b"GIF8") {
        return Some([le16(6)?, le16(8)?]);
    }
    if b.starts_with(b"BM") {
        return Some([le32(18)?.unsigned_abs(), le32(22)?.unsigned_abs()]);
    }
    if b.starts_with(&[0xff, 0xd8]) {
        // Walk the markers to the first start-of-frame, which holds the size.
        let mut i = 2;
        while i + 9 < b.len() {
            if b[i] != 0xff {
                return None;
            }
            let marker = b[i + 1];
            let length = usize::try_from(be16(i + 2)?).ok()?;
            if matches!(marker, 0xc0..=0xcf) && !matches!(marker, 0xc4 | 0xc8 | 0xcc) {
                return Some([be16(i + 7)?, be16(i + 5)?]);
            }
            i += 2 + length;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_come_from_each_kind_of_header() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend_from_slice(&28u32.to_be_bytes());
        png.extend_from_slice(&14u32.to_be_bytes());
        assert_eq!(header_size(&png), Some([28, 14]));
        assert_eq!(header_size(b"GIF89a\x10\x00\x20\x00"), Some([16, 32]));
        let mut jpeg = vec![0xff, 0xd8, 0xff, 0xe0, 0, 4, 0, 0, 0xff, 0xc0, 0, 11, 8];
        jpeg.extend_from_slice(&[0, 30, 0, 40, 3, 0, 0, 0]);
        assert_eq!(header_size(&jpeg), Some([40, 30]));
        assert_eq!(header_size(b"not an image"), None);
        assert_eq!(header_size(&png[..18]), None);
    }
}
