//! Competitions as Kaggle ships them: spreadsheets converted to CSV tables on the host, and
//! side tables joined by the baseline, solved end to end on the real WASI sandbox.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Result, ensure};
use kaggle_solver::pipeline::analyse::{CompetitionText, analyse, convert};
use kaggle_solver::pipeline::generate::BaselineGenerator;
use kaggle_solver::pipeline::solve::PreparedCompetition;

use crate::pipeline::{harness, single_shot, solve_competition};

/// A cell reference's column letters: 0 is `A`, 26 is `AA`.
fn column_letters(mut index: usize) -> String {
    let mut letters = Vec::new();
    loop {
        letters.push(char::from(
            b'A' + u8::try_from(index % 26).expect("a letter"),
        ));
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    letters.iter().rev().collect()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The bytes of an `.xlsx` workbook of `sheets` (name, rows of cells); a cell that parses
/// as a number is stored as one, any other as an inline string, an empty one left out.
pub(crate) fn xlsx(sheets: &[(&str, Vec<Vec<&str>>)]) -> Vec<u8> {
    const MAIN: &str = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
    const RELS: &str = "http://schemas.openxmlformats.org/package/2006/relationships";
    const DOC: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
    let mut overrides = String::new();
    let (mut listed, mut rels) = (String::new(), String::new());
    let mut parts = Vec::new();
    for (n, (name, rows)) in sheets.iter().enumerate() {
        let n = n + 1;
        overrides.push_str(&format!(
            "<Override PartName=\"/xl/worksheets/sheet{n}.xml\" ContentType=\"application/\
             vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml\"/>"
        ));
        listed.push_str(&format!(
            "<sheet name=\"{}\" sheetId=\"{n}\" r:id=\"rId{n}\"/>",
            escape(name)
        ));
        rels.push_str(&format!(
            "<Relationship Id=\"rId{n}\" Type=\"{DOC}/worksheet\" \
             Target=\"worksheets/sheet{n}.xml\"/>"
        ));
        let mut data = String::new();
        for (r, row) in rows.iter().enumerate() {
            data.push_str(&format!("<row r=\"{}\">", r + 1));
            for (c, cell) in row.iter().enumerate() {
                let at = format!("{}{}", column_letters(c), r + 1);
                if cell.is_empty() {
                    continue;
                } else if cell.parse::<f64>().is_ok() {
                    data.push_str(&format!("<c r=\"{at}\"><v>{cell}</v></c>"));
                } else {
                    data.push_str(&format!(
                        "<c r=\"{at}\" t=\"inlineStr\"><is><t>{}</t></is></c>",
                        escape(cell)
                    ));
                }
            }
            data.push_str("</row>");
        }
        parts.push((
            format!("xl/worksheets/sheet{n}.xml"),
            format!("<worksheet xmlns=\"{MAIN}\"><sheetData>{data}</sheetData></worksheet>"),
        ));
    }
    parts.push((
        "[Content_Types].xml".into(),
        format!(
            "<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\
             <Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-\
             package.relationships+xml\"/><Default Extension=\"xml\" \
             ContentType=\"application/xml\"/><Override PartName=\"/xl/workbook.xml\" \
             ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.\
             sheet.main+xml\"/>{overrides}</Types>"
        ),
    ));
    parts.push((
        "_rels/.rels".into(),
        format!(
            "<Relationships xmlns=\"{RELS}\"><Relationship Id=\"rId1\" \
             Type=\"{DOC}/officeDocument\" Target=\"xl/workbook.xml\"/></Relationships>"
        ),
    ));
    parts.push((
        "xl/workbook.xml".into(),
        format!(
            "<workbook xmlns=\"{MAIN}\" xmlns:r=\"{DOC}\"><sheets>{listed}</sheets></workbook>"
        ),
    ));
    parts.push((
        "xl/_rels/workbook.xml.rels".into(),
        format!("<Relationships xmlns=\"{RELS}\">{rels}</Relationships>"),
    ));
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (path, body) in parts {
        zip.start_file(path, zip::write::SimpleFileOptions::default())
            .expect("zip entry");
        zip.write_all(body.as_bytes()).expect("zip write");
    }
    zip.finish().expect("zip").into_inner()
}

/// The bytes of an OpenDocument spreadsheet (`.ods`) of `sheets`, cells typed as [`xlsx`]
/// types them: the `mimetype` entry first and stored, as the format requires.
fn ods(sheets: &[(&str, Vec<Vec<&str>>)]) -> Vec<u8> {
    let mut tables = String::new();
    for (name, rows) in sheets {
        tables.push_str(&format!("<table:table table:name=\"{}\">", escape(name)));
        for row in rows {
            tables.push_str("<table:table-row>");
            for cell in row {
                if cell.is_empty() {
                    tables.push_str("<table:table-cell/>");
                } else if cell.parse::<f64>().is_ok() {
                    tables.push_str(&format!(
                        "<table:table-cell office:value-type=\"float\" \
                         office:value=\"{cell}\"><text:p>{cell}</text:p></table:table-cell>"
                    ));
                } else {
                    tables.push_str(&format!(
                        "<table:table-cell office:value-type=\"string\"><text:p>{}</text:p>\
                         </table:table-cell>",
                        escape(cell)
                    ));
                }
            }
            tables.push_str("</table:table-row>");
        }
        tables.push_str("</table:table>");
    }
    const OFFICE: &str = "urn:oasis:names:tc:opendocument:xmlns:office:1.0";
    let content = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><office:document-content \
         xmlns:office=\"{OFFICE}\" \
         xmlns:table=\"urn:oasis:names:tc:opendocument:xmlns:table:1.0\" \
         xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\" office:version=\"1.2\">\
         <office:body><office:spreadsheet>{tables}</office:spreadsheet></office:body>\
         </office:document-content>"
    );
    let manifest = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><manifest:manifest \
         xmlns:manifest=\"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0\" \
         manifest:version=\"1.2\"><manifest:file-entry manifest:full-path=\"/\" \
         manifest:media-type=\"application/vnd.oasis.opendocument.spreadsheet\"/>\
         <manifest:file-entry manifest:full-path=\"content.xml\" \
         manifest:media-type=\"text/xml\"/></manifest:manifest>";
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("mimetype", stored).expect("zip entry");
    zip.write_all(b"application/vnd.oasis.opendocument.spreadsheet")
        .expect("zip write");
    for (path, body) in [
        ("content.xml", content.as_str()),
        ("META-INF/manifest.xml", manifest),
    ] {
        zip.start_file(path, zip::write::SimpleFileOptions::default())
            .expect("zip entry");
        zip.write_all(body.as_bytes()).expect("zip write");
    }
    zip.finish().expect("zip").into_inner()
}

fn folder(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, body) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, body).expect("write");
    }
    dir
}

#[test]
fn each_sheet_becomes_a_csv_and_the_workbook_is_not_linked() {
    let book = xlsx(&[
        (
            "train",
            vec![
                vec!["id", "size", "colour", "y"],
                vec!["1", "1.5", "red", "0"],
                vec!["2", "", "blue", "1"],
                vec!["3", "3", "a, \"quoted\" one", "1"],
            ],
        ),
        (
            "notes & more",
            vec![vec!["key", "note"], vec!["k1", "first"]],
        ),
        ("empty", vec![]),
    ]);
    let source = folder(&[
        ("data/train.xlsx", &book),
        ("test.csv", b"id,size,colour\n4,2,red\n"),
        ("sample_submission.csv", b"id,y\n4,0\n"),
    ]);
    let out = tempfile::tempdir().expect("tempdir");
    let dest = out.path().join("tables");
    let converted = convert::convert_tables(source.path(), &dest)
        .expect("converted")
        .expect("a spreadsheet was there");
    assert_eq!(
        converted.tables,
        [
            ("data/train.xlsx".to_owned(), "data/train.csv".to_owned()),
            (
                "data/train.xlsx".to_owned(),
                "data/train.notes___more.csv".to_owned()
            ),
        ]
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("data/train.csv")).expect("csv"),
        "id,size,colour,y\n1,1.5,red,0\n2,,blue,1\n3,3,\"a, \"\"quoted\"\" one\",1\n"
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("data/train.notes___more.csv")).expect("csv"),
        "key,note\nk1,first\n"
    );
    assert!(!dest.join("data/train.xlsx").exists());
    assert_eq!(
        std::fs::read(dest.join("test.csv")).expect("linked"),
        b"id,size,colour\n4,2,red\n"
    );
    // The analysis reads the converted folder as any other.
    let a = analyse(&dest, "x", &CompetitionText::default()).expect("analysis");
    assert_eq!(a.train.path, "data/train.csv");
    assert_eq!(a.train.rows, 3);
    assert_eq!(a.tables.side[0].table.path, "data/train.notes___more.csv");
    // Without a spreadsheet nothing is made.
    let plain = folder(&[("train.csv", b"id,y\n1,0\n")]);
    assert_eq!(
        convert::convert_tables(plain.path(), &out.path().join("none")).expect("listed"),
        None
    );
    assert!(!out.path().join("none").exists());
}

/// Converts the one spreadsheet `name` (with `bytes`) beside a test table; returns each
/// converted table's path and text.
fn converted_sheets(name: &str, bytes: &[u8]) -> Vec<(String, String)> {
    let source = folder(&[(name, bytes), ("test.csv", b"id,size,colour\n4,2,red\n")]);
    let out = tempfile::tempdir().expect("tempdir");
    let dest = out.path().join("tables");
    let converted = convert::convert_tables(source.path(), &dest)
        .expect("converted")
        .expect("a spreadsheet was there");
    assert!(!dest.join(name).exists(), "{name} is not linked");
    converted
        .tables
        .iter()
        .map(|(from, to)| {
            assert_eq!(from, name);
            let text = std::fs::read_to_string(dest.join(to)).expect("csv");
            (to.clone(), text)
        })
        .collect()
}

#[test]
fn an_opendocument_spreadsheet_becomes_a_csv_per_sheet() {
    let book = ods(&[
        (
            "Sheet1",
            vec![
                vec!["id", "size", "colour", "label"],
                vec!["1", "2.5", "red", "yes"],
                vec!["2", "7", "a, \"quoted\" one", "no"],
                vec!["3", "", "green", "yes"],
            ],
        ),
        ("notes", vec![vec!["about"], vec!["written by the test"]]),
    ]);
    assert_eq!(
        converted_sheets("train.ods", &book),
        [
            (
                "train.csv".to_owned(),
                "id,size,colour,label\n1,2.5,red,yes\n2,7,\"a, \"\"quoted\"\" one\",no\n\
                 3,,green,yes\n"
                    .to_owned()
            ),
            (
                "train.notes.csv".to_owned(),
                "about\nwritten by the test\n".to_owned()
            ),
        ]
    );
}

#[test]
fn a_legacy_excel_workbook_becomes_a_csv_per_sheet() {
    // Written by tests/fixtures/tables/make_xls.py (xlwt, BIFF8): nothing here writes BIFF.
    let book =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tables/train.xls"))
            .expect("the committed fixture");
    assert_eq!(
        converted_sheets("train.xls", &book),
        [
            (
                "train.csv".to_owned(),
                "id,size,colour,label\n1,2.5,red,yes\n2,7,blue,no\n3,,green,yes\n".to_owned()
            ),
            (
                "train.notes.csv".to_owned(),
                "about\nmade by make_xls.py\n".to_owned()
            ),
        ]
    );
}

#[test]
fn a_broken_or_empty_spreadsheet_is_a_clear_error() {
    let source = folder(&[("train.xlsx", b"not a zip at all")]);
    let out = tempfile::tempdir().expect("tempdir");
    let error = convert::convert_tables(source.path(), &out.path().join("t"))
        .expect_err("unreadable")
        .to_string();
    assert!(
        error.starts_with("cannot read the spreadsheet train.xlsx: "),
        "{error}"
    );
    let source = folder(&[("train.xlsx", &xlsx(&[("only", vec![])]))]);
    let error = convert::convert_tables(source.path(), &out.path().join("u"))
        .expect_err("empty")
        .to_string();
    assert_eq!(
        error,
        "cannot read the spreadsheet train.xlsx: every sheet is empty"
    );
}

/// A value in [-1, 1) that looks random but is fixed by `i`.
fn wobble(i: usize, salt: f64) -> f64 {
    ((i as f64 * 12.9898 + salt).sin() * 43_758.545_3).fract()
}

/// The share of `submission`'s rows whose label is `truth`'s for that id.
fn accuracy(submission: &Path, truth: &std::collections::HashMap<String, String>) -> Result<f64> {
    let text = std::fs::read_to_string(submission)?;
    let rows: Vec<(&str, &str)> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(','))
        .collect();
    ensure!(
        rows.len() == truth.len(),
        "{} rows, not {}",
        rows.len(),
        truth.len()
    );
    let right = rows
        .iter()
        .filter(|(id, label)| truth.get(*id).map(String::as_str) == Some(*label))
        .count();
    Ok(right as f64 / rows.len() as f64)
}

fn local(slug: &str, dir: &Path) -> PreparedCompetition {
    PreparedCompetition {
        slug: slug.into(),
        dir: dir.to_path_buf(),
        text: CompetitionText {
            description: Some("Submissions are scored by accuracy.".into()),
            evaluation_metric: None,
        },
        pin: None,
    }
}

#[tokio::test]
async fn a_workbook_competition_is_solved_from_its_converted_sheet() -> Result<()> {
    let label = |x: f64| if x > 0.0 { "up" } else { "down" };
    let header = vec!["id", "x", "colour", "y"];
    let cells: Vec<[String; 4]> = (0..160)
        .map(|i| {
            let x = wobble(i, 1.0);
            let colour = ["red", "blue", "green"][i % 3];
            [
                i.to_string(),
                format!("{x:.4}"),
                colour.into(),
                label(x).into(),
            ]
        })
        .collect();
    let rows: Vec<Vec<&str>> = std::iter::once(header)
        .chain(cells.iter().map(|r| r.iter().map(String::as_str).collect()))
        .collect();
    let data = tempfile::tempdir()?;
    std::fs::write(data.path().join("train.xlsx"), xlsx(&[("Sheet1", rows)]))?;
    let (mut test, mut sample) = (String::from("id,x,colour\n"), String::from("id,y\n"));
    let mut truth = std::collections::HashMap::new();
    for i in 1000..1050 {
        let x = wobble(i, 1.0);
        test.push_str(&format!("{i},{x:.4},red\n"));
        sample.push_str(&format!("{i},up\n"));
        truth.insert(i.to_string(), label(x).to_owned());
    }
    std::fs::write(data.path().join("test.csv"), test)?;
    std::fs::write(data.path().join("sample_submission.csv"), sample)?;

    let harness = harness(Arc::new(BaselineGenerator));
    let report = solve_competition(&harness, &single_shot(), &local("sheets", data.path())).await?;
    ensure!(
        report.analysis.tables.converted == [("train.xlsx".to_owned(), "train.csv".to_owned())],
        "{:?}",
        report.analysis.tables.converted
    );
    ensure!(report.analysis.train.rows == 160);
    let accuracy = accuracy(Path::new(&report.submission.path), &truth)?;
    ensure!(accuracy >= 0.9, "accuracy {accuracy}");
    // The user's folder is left as it was.
    ensure!(!data.path().join("train.csv").exists());
    Ok(())
}

#[tokio::test]
async fn the_baseline_joins_a_side_table_that_holds_the_signal() -> Result<()> {
    // The label follows `signal`, which only the side table has: without the join the
    // baseline could only guess.
    let label = |s: f64| if s > 0.0 { "yes" } else { "no" };
    let data = tempfile::tempdir()?;
    let (mut train, mut test) = (String::from("id,noise,y\n"), String::from("id,noise\n"));
    let (mut sample, mut details) = (String::from("id,y\n"), String::from("id,signal\n"));
    let mut truth = std::collections::HashMap::new();
    for i in 0..200 {
        let (noise, signal) = (wobble(i, 2.0), wobble(i, 3.0));
        details.push_str(&format!("{i},{signal:.4}\n"));
        if i < 150 {
            train.push_str(&format!("{i},{noise:.4},{}\n", label(signal)));
        } else {
            test.push_str(&format!("{i},{noise:.4}\n"));
            sample.push_str(&format!("{i},no\n"));
            truth.insert(i.to_string(), label(signal).to_owned());
        }
    }
    for (name, body) in [
        ("train.csv", train),
        ("test.csv", test),
        ("sample_submission.csv", sample),
        ("details.csv", details),
    ] {
        std::fs::write(data.path().join(name), body)?;
    }
    let harness = harness(Arc::new(BaselineGenerator));
    let report = solve_competition(&harness, &single_shot(), &local("side", data.path())).await?;
    let link = report.analysis.tables.side[0].link.clone();
    ensure!(
        link.as_ref()
            .is_some_and(|l| l.key == "id" && l.row_id && l.kind.is_lookup()),
        "{link:?}"
    );
    let accuracy = accuracy(Path::new(&report.submission.path), &truth)?;
    ensure!(accuracy >= 0.9, "accuracy {accuracy}");
    Ok(())
}

#[test]
fn the_holdout_view_filters_side_tables_keyed_by_the_row_id() -> Result<()> {
    use kaggle_solver::pipeline::score::{build_view, holdout_spec};
    let data = tempfile::tempdir()?;
    let label = |i: usize| ["cat", "dog"][i % 2];
    let (mut train, mut test, mut sample) = (
        String::from("id,x,label\n"),
        String::from("id,x\n"),
        String::from("id,label\n"),
    );
    let (mut meta_train, mut meta_test, mut labels) = (
        String::from("id,colour\n"),
        String::from("id,colour\n"),
        String::from("id,label\n"),
    );
    for i in 0..100 {
        train.push_str(&format!("{i},{}.5,{}\n", i % 9, label(i)));
        meta_train.push_str(&format!("{i},c{}\n", i % 5));
        labels.push_str(&format!("{i},{}\n", label(i)));
    }
    for i in 500..520 {
        test.push_str(&format!("{i},{}.5\n", i % 9));
        sample.push_str(&format!("{i},cat\n"));
        meta_test.push_str(&format!("{i},c9\n"));
    }
    for (name, body) in [
        ("train.csv", train),
        ("test.csv", test),
        ("sample_submission.csv", sample),
        ("train_meta.csv", meta_train),
        ("test_meta.csv", meta_test),
        ("train_labels.csv", labels),
    ] {
        std::fs::write(data.path().join(name), body)?;
    }
    let analysis = analyse(data.path(), "side", &CompetitionText::default())?;
    let spec = holdout_spec(&analysis, data.path(), 7, 1)?;
    ensure!(
        spec.row_tables == ["test_meta.csv", "train_labels.csv", "train_meta.csv"],
        "{:?}",
        spec.row_tables
    );
    let views = tempfile::tempdir()?;
    let view = views.path().join("view");
    let answers = build_view(data.path(), &view, &spec)?;
    let held: std::collections::HashSet<&str> =
        answers.rows.iter().map(|(id, _)| id.as_str()).collect();
    ensure!(held.len() == 20, "{}", held.len());
    let ids = |name: &str| -> Result<Vec<String>> {
        Ok(std::fs::read_to_string(view.join(name))?
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap_or_default().to_owned())
            .collect())
    };
    let fit = ids("train.csv")?;
    ensure!(ids("train_meta.csv")? == fit);
    ensure!(
        ids("train_labels.csv")? == fit,
        "the labels keep the fit rows only"
    );
    let moved = ids("test_meta.csv")?;
    ensure!(
        moved == ids("test.csv")?,
        "the holdout rows' side rows are the test role's"
    );
    ensure!(moved.iter().all(|id| held.contains(id.as_str())));
    Ok(())
}
