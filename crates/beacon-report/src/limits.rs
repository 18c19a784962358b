//! Size limits that hold for any value anywhere in a report, known field or not.

use serde_json::Value;

use crate::path::Path;
use crate::{MAX_ARRAY_LEN, MAX_BODY_DEPTH, MAX_OBJECT_KEYS, MAX_STRING_LEN, ReportError};

/// Checks string and key lengths, array and object sizes, and nesting depth.
pub(crate) fn check(value: &Value) -> Result<(), ReportError> {
    walk(value, &Path::Root, 0)
}

fn walk(value: &Value, path: &Path<'_>, depth: usize) -> Result<(), ReportError> {
    match value {
        Value::String(text) => within(text.len(), MAX_STRING_LEN, path),
        Value::Array(items) => {
            let level = enter(depth)?;
            within(items.len(), MAX_ARRAY_LEN, path)?;
            items
                .iter()
                .enumerate()
                .try_for_each(|(i, item)| walk(item, &path.index(i), level))
        }
        Value::Object(map) => {
            let level = enter(depth)?;
            within(map.len(), MAX_OBJECT_KEYS, path)?;
            map.iter().try_for_each(|(key, item)| {
                let child = path.key(key);
                within(key.len(), MAX_STRING_LEN, &child)?;
                walk(item, &child, level)
            })
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}

/// The depth of a container whose parent is at `depth`; also bounds this recursion.
fn enter(depth: usize) -> Result<usize, ReportError> {
    let level = depth + 1;
    if level > MAX_BODY_DEPTH {
        return Err(ReportError::TooDeep {
            max: MAX_BODY_DEPTH,
        });
    }
    Ok(level)
}

fn within(len: usize, max: usize, path: &Path<'_>) -> Result<(), ReportError> {
    if len > max {
        return Err(ReportError::TooLong {
            field: path.render(),
            max,
        });
    }
    Ok(())
}
