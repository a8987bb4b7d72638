//! An image competition's pictures in the holdout view: each holdout row's picture moves from
//! the training folder to the test folder under a name that says nothing of the row
//! (`holdout-17.png`, which is also the row's id in the view), and the real test pictures stay
//! out, so no file name, folder or table of the view shows a holdout label.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use super::holdout::{HoldoutError, Table, link};
use crate::pipeline::analyse::ImageFolder;

/// The pictures' folders and naming rules of an image competition, per role.
#[derive(Debug, Clone)]
pub struct ImageRoles {
    /// The training rows' pictures.
    pub train: ImageFolder,
    /// The pictures of the rows to predict.
    pub test: ImageFolder,
}

impl ImageFolder {
    /// The file, relative to the competition folder, of a row whose column holds `value`.
    pub(super) fn file(&self, value: &str) -> PathBuf {
        Path::new(&self.folder).join(format!("{value}{}", self.suffix))
    }
}

/// A picture's name in the view: nothing of the row's id, file name or folder survives.
fn view_picture(i: usize, extension: &str) -> String {
    format!("holdout-{i}{extension}")
}

/// Where an image competition's pictures go in the view: each holdout row's picture from the
/// training folder to the test folder under a new name, the real test pictures nowhere.
pub(super) struct Pictures<'a> {
    roles: &'a ImageRoles,
    /// Whether the test pictures are named by the id column.
    id_names_files: bool,
    /// Each holdout row's training picture and extension (with its dot), by row.
    held: BTreeMap<usize, (PathBuf, String)>,
    /// Files kept out of the view: the holdout rows' pictures and the real test pictures.
    pub(super) left_out: HashSet<PathBuf>,
}

impl<'a> Pictures<'a> {
    pub(super) fn plan(
        roles: &'a ImageRoles,
        train: &Table,
        test: &Table,
        chosen: &[usize],
        id_column: &str,
    ) -> Result<Self, HoldoutError> {
        let column = |table: &Table, name: &str, what: &str| {
            table.column(name).ok_or_else(|| {
                HoldoutError::Columns(format!(
                    "the {what} has no column {name:?} naming its pictures"
                ))
            })
        };
        let train_at = column(train, &roles.train.column, "training table")?;
        let test_at = column(test, &roles.test.column, "test table")?;
        let mut left_out: HashSet<PathBuf> = test
            .rows
            .iter()
            .map(|r| roles.test.file(r.get(test_at).unwrap_or("").trim()))
            .collect();
        let mut held = BTreeMap::new();
        for &i in chosen {
            let value = train.rows[i].get(train_at).unwrap_or("").trim();
            let file = roles.train.file(value);
            let extension = file
                .extension()
                .map(|e| format!(".{}", e.to_string_lossy()))
                .unwrap_or_default();
            left_out.insert(file.clone());
            held.insert(i, (file, extension));
        }
        Ok(Self {
            roles,
            id_names_files: roles.test.column == id_column,
            held,
            left_out,
        })
    }

    /// Whether the view's test table column `name` names the pictures and is not the id
    /// column (which [`Self::view_id`] fills).
    pub(super) fn names_files(&self, name: &str) -> bool {
        name == self.roles.test.column && !self.id_names_files
    }

    /// The value naming holdout row `i`'s picture in the view: the new file name, or its stem
    /// when the test folder's rule adds the extension.
    pub(super) fn view_value(&self, i: usize) -> String {
        if self.roles.test.suffix.is_empty() {
            let extension = self.held.get(&i).map_or("", |(_, e)| e.as_str());
            view_picture(i, extension)
        } else {
            view_picture(i, "")
        }
    }

    /// Holdout row `i`'s id in the view.
    pub(super) fn view_id(&self, i: usize) -> String {
        if self.id_names_files {
            self.view_value(i)
        } else {
            view_picture(i, "")
        }
    }

    /// Links each holdout row's picture into the view's test folder under its new name.
    pub(super) fn link(&self, source: &Path, view: &Path) -> Result<(), HoldoutError> {
        for (&i, (file, _)) in &self.held {
            let to = self.roles.test.file(&self.view_value(i));
            let to = view.join(to);
            let from = source.join(file);
            if !from.is_file() {
                return Err(HoldoutError::Columns(format!(
                    "the holdout row {i}'s picture {} is not a file",
                    file.display()
                )));
            }
            link(&from, &to, file)?;
        }
        Ok(())
    }
}
