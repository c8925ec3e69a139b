//! DuckDB's C API where the duckdb crate has no safe door: the database is opened here (the
//! crate's `Connection` is then opened on it) so that casts can be registered on it
//! (`register_cast`), and a cast function's vectors are read and written here. Nothing else
//! in xform calls the C API.

use std::ffi::{CStr, CString, c_char};
use std::path::Path;
use std::ptr;

use duckdb::ffi;

/// An open DuckDB database; closed when dropped, after the connections opened on it (each
/// keeps DuckDB's database instance alive until it is closed).
pub(super) struct Database(ffi::duckdb_database);

// SAFETY: a `duckdb_database` is a handle to DuckDB's database instance, which is made to be
// used from many threads at once; this handle is only read after opening, and closed once.
unsafe impl Send for Database {}
// SAFETY: as above: nothing mutates the handle through a shared reference.
unsafe impl Sync for Database {}

impl Database {
    /// Opens `path` (or `:memory:`); the error is DuckDB's message.
    pub(super) fn open(path: &Path) -> Result<Database, String> {
        let c_path = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| format!("{} contains a NUL byte", path.display()))?;
        let mut db: ffi::duckdb_database = ptr::null_mut();
        let mut error: *mut c_char = ptr::null_mut();
        // SAFETY: every pointer is valid for the call; `error` is DuckDB's to allocate, ours
        // to free.
        let state =
            unsafe { ffi::duckdb_open_ext(c_path.as_ptr(), &mut db, ptr::null_mut(), &mut error) };
        if state == ffi::DuckDBSuccess {
            return Ok(Database(db));
        }
        Err(take_message(error).unwrap_or_else(|| "DuckDB could not open it".into()))
    }

    /// The handle the duckdb crate's `Connection::open_from_raw` takes.
    pub(super) fn raw(&self) -> ffi::duckdb_database {
        self.0
    }

    /// Registers a cast from `from` to `to` (replacing DuckDB's own, if it has one); with a
    /// `cost` it is also implicit, chosen by DuckDB's binder at that cost.
    pub(super) fn register_cast(
        &self,
        (from, to): (ffi::DUCKDB_TYPE, ffi::DUCKDB_TYPE),
        cost: Option<i64>,
        function: ffi::duckdb_cast_function_t,
    ) -> Result<(), String> {
        let mut con: ffi::duckdb_connection = ptr::null_mut();
        // SAFETY: the database is open; the connection and the cast function are created,
        // used and destroyed here; DuckDB copies the logical types it is given.
        unsafe {
            if ffi::duckdb_connect(self.0, &mut con) != ffi::DuckDBSuccess {
                return Err("cannot connect to register a cast".into());
            }
            let mut cast = ffi::duckdb_create_cast_function();
            for (ty, set) in [
                (from, ffi::duckdb_cast_function_set_source_type as SetType),
                (to, ffi::duckdb_cast_function_set_target_type as SetType),
            ] {
                let mut logical = ffi::duckdb_create_logical_type(ty);
                set(cast, logical);
                ffi::duckdb_destroy_logical_type(&mut logical);
            }
            if let Some(cost) = cost {
                ffi::duckdb_cast_function_set_implicit_cast_cost(cast, cost);
            }
            ffi::duckdb_cast_function_set_function(cast, function);
            let state = ffi::duckdb_register_cast_function(con, cast);
            ffi::duckdb_destroy_cast_function(&mut cast);
            ffi::duckdb_disconnect(&mut con);
            match state == ffi::DuckDBSuccess {
                true => Ok(()),
                false => Err(format!("DuckDB refused the cast {from} -> {to}")),
            }
        }
    }
}

type SetType = unsafe extern "C" fn(ffi::duckdb_cast_function, ffi::duckdb_logical_type);

impl Drop for Database {
    fn drop(&mut self) {
        // SAFETY: opened by `open`, closed only here.
        unsafe { ffi::duckdb_close(&mut self.0) };
    }
}

fn take_message(error: *mut c_char) -> Option<String> {
    if error.is_null() {
        return None;
    }
    // SAFETY: DuckDB allocated a NUL-terminated message; it is copied, then freed once.
    unsafe {
        let text = CStr::from_ptr(error).to_string_lossy().into_owned();
        ffi::duckdb_free(error.cast());
        Some(text)
    }
}

/// A cast's body: `count` values of `input` (flat: DuckDB flattens a cast's input) mapped to
/// `output` by `f` (None: NULL), NULL staying NULL.
///
/// # Safety
/// `input` and `output` are the vectors DuckDB passed to a cast function, of `count` rows,
/// holding `I` and `O` values.
pub(super) unsafe fn map_values<I: Copy, O: Copy>(
    count: ffi::idx_t,
    (input, output): (ffi::duckdb_vector, ffi::duckdb_vector),
    f: impl Fn(I) -> Option<O>,
) {
    // SAFETY: as the caller promises.
    unsafe {
        let rows = count as usize;
        let from = std::slice::from_raw_parts(ffi::duckdb_vector_get_data(input) as *const I, rows);
        let to =
            std::slice::from_raw_parts_mut(ffi::duckdb_vector_get_data(output) as *mut O, rows);
        let valid = ffi::duckdb_vector_get_validity(input);
        ffi::duckdb_vector_ensure_validity_writable(output);
        let out_valid = ffi::duckdb_vector_get_validity(output);
        for row in 0..rows {
            let null = !valid.is_null() && !ffi::duckdb_validity_row_is_valid(valid, row as u64);
            match (null, f(from[row])) {
                (false, Some(value)) => to[row] = value,
                _ => ffi::duckdb_validity_set_row_invalid(out_valid, row as u64),
            }
        }
    }
}
