/*
 * Real programs, their data compared with a native run: the sqlite3 shell
 * (rollback-journal and WAL modes), RocksDB's db_bench, fio with
 * verification and a C build.  Each test runs the same job natively in one directory and
 * under LD_PRELOAD=libfolio.so in another, then checks what is on disk with
 * tools run natively (without folio), so that what folio left in the
 * kernel is what is judged.
 *
 * Short runs by default; TEST_LONG=1 (make check-all) makes them bigger.
 * BUILD_DIR and SANITIZER_RUNTIME come from the Makefile.
 */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

/*
 * TEST_LONG=1: bigger runs (make check-all).  Read once.
 */
static bool long_run(void)
{
	static int on = -1;

	if (on < 0) {
		const char *v = getenv("TEST_LONG");

		on = v && *v && strcmp(v, "0");
	}
	return on;
}

/* scripts/install-deps installs them; without one its tests say so and skip. */
static void need(const char *tool, const char *package)
{
	if (sh("command -v %s > /dev/null 2>&1", tool) != 0)
		cr_skip_test("no %s installed (package %s: scripts/install-deps)", tool, package);
}

/* A file's size, -1 if missing. */
static long long file_size(const char *dir, const char *name)
{
	char *path;
	struct stat st;
	int ret;

	cr_assert(asprintf(&path, "%s/%s", dir, name) >= 0);
	ret = stat(path, &st);
	free(path);
	return ret ? -1 : (long long)st.st_size;
}

/* ---- SQLite ---------------------------------------------------------- */

/* A fixed pseudo-random sequence (PCG-style LCG): the same script each run. */
static uint32_t rnd(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return *s >> 33;
}

static void put_text(FILE *f, uint64_t *s, int len)
{
	fputc('\'', f);
	while (len--)
		fputc('a' + rnd(s) % 26, f);
	fputc('\'', f);
}

#define ACCOUNTS	50
#define ACCOUNT_TOTAL	(ACCOUNTS * 1000)

/*
 * Write chunk @chunk of the script to @dir/chunk@chunk.sql: @ntx transactions
 * of inserts (rows of up to a few KiB, so overflow pages too), updates,
 * deletes and transfers between accounts (their sum stays ACCOUNT_TOTAL),
 * every seventh rolled back; a SELECT of aggregates after each and of a few
 * rows after some.  @header: the pragmas each sqlite3 process starts with.
 * The page cache of SQLite is kept small so that it writes pages to the
 * database file in the middle of transactions too.
 */
static void sql_chunk(const char *dir, int chunk, int ntx, const char *header)
{
	uint64_t s = 0x5eed0000u + chunk;
	char *path;
	FILE *f;

	cr_assert(asprintf(&path, "%s/chunk%d.sql", dir, chunk) >= 0);
	f = fopen(path, "w");
	cr_assert(f, "%s", path);
	free(path);
	fprintf(f, "%s\nPRAGMA cache_size=8;\n", header);
	if (chunk == 0) {
		fprintf(f, "CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, v TEXT, pad BLOB);\n"
			"CREATE INDEX t_k ON t(k);\n"
			"CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER);\n"
			"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
			"WHERE i < %d) INSERT INTO acct SELECT i, 1000 FROM n;\n", ACCOUNTS);
	}
	for (int tx = 0; tx < ntx; tx++) {
		int ops = 5 + rnd(&s) % 40;

		fprintf(f, "BEGIN;\n");
		for (int op = 0; op < ops; op++) {
			unsigned int id = rnd(&s) % 3000, r = rnd(&s) % 10;

			if (r < 5) {
				fprintf(f, "INSERT OR REPLACE INTO t VALUES(%u, %u, ", id,
					rnd(&s) % 100000);
				put_text(f, &s, 1 + rnd(&s) % 200);
				fprintf(f, ", zeroblob(%u));\n", rnd(&s) % 3000);
			} else if (r < 7) {
				fprintf(f, "UPDATE t SET k = k + %u, v = v || ", rnd(&s) % 100);
				put_text(f, &s, rnd(&s) % 20);
				fprintf(f, " WHERE id BETWEEN %u AND %u;\n", id, id + rnd(&s) % 50);
			} else if (r < 8) {
				fprintf(f, "DELETE FROM t WHERE id BETWEEN %u AND %u;\n", id,
					id + rnd(&s) % 30);
			} else {
				unsigned int amount = rnd(&s) % 500;

				fprintf(f, "UPDATE acct SET bal = bal - %u WHERE id = %u;\n"
					"UPDATE acct SET bal = bal + %u WHERE id = %u;\n",
					amount, 1 + rnd(&s) % ACCOUNTS, amount,
					1 + rnd(&s) % ACCOUNTS);
			}
		}
		fprintf(f, "%s;\n", tx % 7 == 6 ? "ROLLBACK" : "COMMIT");
		fprintf(f, "SELECT count(*), sum(k), total(length(v)), total(length(pad)) FROM t;\n"
			"SELECT sum(bal) FROM acct;\n");
		if (tx % 5 == 0)
			fprintf(f, "SELECT id, k, substr(v, 1, 30) FROM t WHERE k > %u "
				"ORDER BY k, id LIMIT 3;\n", rnd(&s) % 100000);
		if (tx == ntx / 2 && chunk == 1)
			fprintf(f, "DELETE FROM t WHERE id %% 3 = 0;\nVACUUM;\n");
	}
	fprintf(f, "PRAGMA integrity_check;\n");
	cr_assert_eq(fclose(f), 0);
}

#define SQL_CHUNKS	3
/*
 * Each chunk is a new sqlite3 process; folio's settings differ between them
 * (default, a cache of 256K with a small dirty limit, a 5 ms flush interval)
 * so that eviction and write-back in the middle of a transaction happen too.
 */
static const char *const sql_settings[SQL_CHUNKS] = {
	"",
	"FOLIO_CACHE_SIZE=256K FOLIO_DIRTY_LIMIT=16K ",
	"FOLIO_FLUSH_INTERVAL=5 ",
};

/*
 * Run the chunks in @dir/native natively and in @dir/folio under folio
 * (tracking @files), the two runs side by side; @last_cmd goes first in
 * the last chunk.
 */
static void sql_run(const char *dir, const char *files, const char *last_cmd)
{
	char *chain[2] = { strdup("true"), strdup("true") }, *next;

	for (int c = 0; c < SQL_CHUNKS; c++) {
		const char *cmd = c == SQL_CHUNKS - 1 && last_cmd ? last_cmd : "";

		cr_assert(asprintf(&next, "%s && { printf '%s'; cat ../chunk%d.sql; } | "
				   "sqlite3 -bail x.db", chain[0], cmd, c) >= 0);
		free(chain[0]);
		chain[0] = next;
		cr_assert(asprintf(&next, "%s && { printf '%s'; cat ../chunk%d.sql; } | "
				   PRELOAD "FOLIO_FILES='%s' FOLIO_LOG=info %s sqlite3 -bail x.db",
				   chain[1], cmd, c, files, sql_settings[c]) >= 0);
		free(chain[1]);
		chain[1] = next;
	}
	sh("cd %s || exit; "
	   "(cd native && { %s; } > ../native.out 2> ../native.err; echo $? > ../native.status) & "
	   "(cd folio && { %s; } > ../folio.out 2> ../folio.err; echo $? > ../folio.status) & wait",
	   dir, chain[0], chain[1]);
	cr_assert_str_eq(slurp("%s/native.status", dir), "0\n", "sqlite3 failed natively: %s",
			 slurp("%s/native.err", dir));
	cr_assert_str_eq(slurp("%s/folio.status", dir), "0\n",
			 "sqlite3 failed under folio: see %s/folio.err", dir);
	free(chain[0]);
	free(chain[1]);
}

/* Check natively: the same output, the same .dump, integrity "ok". */
static bool sql_compare(const char *d)
{
	char *native, *folio, *check;
	bool ok = true;

	native = slurp("%s/native.out", d);
	folio = slurp("%s/folio.out", d);
	EXPECT(ok, strlen(native) > 1000 && strstr(native, "\n50000\n"),
	       "the native run printed too little: %s/native.out", d);
	EXPECT(ok, sh("cd %s && diff native.out folio.out > out.diff", d) == 0,
	       "sqlite3's output differs under folio: %s/out.diff", d);
	for (const char *const *run = (const char *const[]){ "native", "folio", NULL }; *run;
	     run++) {
		EXPECT(ok, sh("cd %s/%s && sqlite3 -bail x.db .dump > ../%s.dump 2>&1 && "
			      "sqlite3 -bail x.db 'PRAGMA integrity_check;' > ../%s.check 2>&1",
			      d, *run, *run, *run) == 0, "native sqlite3 failed on %s/%s/x.db",
		       d, *run);
		check = slurp("%s/%s.check", d, *run);
		EXPECT(ok, !strcmp(check, "ok\n"), "%s database: integrity_check says %s", *run,
		       check);
		free(check);
	}
	EXPECT(ok, sh("cd %s && cmp -s native.dump folio.dump", d) == 0,
	       "the databases differ: diff %s/native.dump %s/folio.dump", d, d);
	check = slurp("%s/folio.err", d);
	EXPECT(ok, strstr(check, "info: tracking x.db"), "x.db was not tracked: %s", check);
	free(check);
	free(native);
	free(folio);
	return ok;
}

static void sql_scripts(const char *d, const char *header)
{
	int ntx = long_run() ? 400 : 40;

	cr_assert_eq(sh("mkdir %s/native %s/folio", d, d), 0);
	for (int c = 0; c < SQL_CHUNKS; c++)
		sql_chunk(d, c, ntx, header);
}

/*
 * Rollback-journal mode: three sqlite3 processes in turn run a generated
 * script; natively and under folio the output, the .dump and the integrity
 * check (run natively) must be the same.
 */
Test(real, sqlite_rollback_journal, .timeout = 900)
{
	char *d = new_dir();

	need("sqlite3", "sqlite3");
	sql_scripts(d, "PRAGMA journal_mode=DELETE;");
	sql_run(d, "*.db:*.db-journal", NULL);
	if (sql_compare(d))
		remove_dir(d);
}

/*
 * WAL mode (the -shm file is memory-mapped, so it passes through), frequent
 * checkpoints, synchronous=NORMAL (commits do not fsync the WAL).  The last
 * process leaves its WAL unchecked-pointed (no_ckpt_on_close): the native
 * sqlite3 that reads the folio run's database after it exits must recover
 * the last transactions from the WAL folio wrote.
 */
Test(real, sqlite_wal, .timeout = 900)
{
	char *d = new_dir();
	bool ok = true;

	need("sqlite3", "sqlite3");
	sql_scripts(d, "PRAGMA journal_mode=WAL;\nPRAGMA synchronous=NORMAL;\n"
		    "PRAGMA wal_autocheckpoint=50;");
	sql_run(d, "*.db:*.db-wal:*.db-journal:*.db-shm", ".dbconfig no_ckpt_on_close on\\n");
	EXPECT(ok, file_size(d, "folio/x.db-wal") > 0,
	       "the folio run left no WAL to read (%s/folio)", d);
	ok &= sql_compare(d);
	if (ok)
		remove_dir(d);
}

/*
 * WAL mode, one writer under folio and native readers at the same time: the
 * writer moves amounts between accounts in 1500 small transactions (20000 with TEST_LONG=1), each
 * reader (a new native sqlite3 process, as many as fit in the writer's run)
 * must see the total unchanged, and the database must be whole.  Only the
 * WAL is tracked, with synchronous=FULL: SQLite fsyncs the WAL before it
 * publishes new frames in the memory-mapped -shm index, and folio's fsync
 * writes them back first.  Tracking the database file too, or
 * synchronous=NORMAL, is not coherent across processes: SQLite publishes
 * checkpointed pages (a partial checkpoint's, without an fsync) and new
 * frames (NORMAL) through the -shm mapping alone, which folio cannot see
 * (folio(7), BUGS; readers here then saw sums such as 200007).
 */
Test(real, sqlite_wal_native_readers_during_a_folio_writer, .timeout = 900)
{
	int ntx = long_run() ? 20000 : 1500;
	char *d = new_dir(), *reads, *check;
	bool ok = true;
	int nreads = 0;
	FILE *f;

	need("sqlite3", "sqlite3");
	cr_assert_eq(sh("cd %s && sqlite3 -bail x.db 'PRAGMA journal_mode=WAL; "
			"CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER, pad BLOB); "
			"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
			"WHERE i < 200) INSERT INTO acct SELECT i, 1000, zeroblob(500) FROM n;' "
			"> /dev/null", d), 0);
	cr_assert(asprintf(&check, "%s/w.sql", d) >= 0);
	f = fopen(check, "w");
	cr_assert(f);
	free(check);
	fprintf(f, ".timeout 60000\nPRAGMA synchronous=FULL;\nPRAGMA wal_autocheckpoint=50;\n");
	for (int i = 0; i < ntx; i++)
		fprintf(f, "BEGIN; UPDATE acct SET bal = bal - 7, pad = zeroblob(%d) WHERE id = %d; "
			"UPDATE acct SET bal = bal + 7 WHERE id = %d; COMMIT;\n", i % 900,
			i * 7919 % 200 + 1, i * 104729 % 200 + 1);
	cr_assert_eq(fclose(f), 0);
	/* At least 3 reads, also if the writer is done before the first. */
	cr_assert_eq(sh("cd %s || exit; { " PRELOAD "FOLIO_FILES='*.db-wal' FOLIO_LOG=info "
			"sqlite3 -bail x.db < w.sql > w.out 2> w.err; echo $? > w.status; } & "
			"n=0; while kill -0 $! 2> /dev/null || [ $n -lt 3 ]; do "
			"sqlite3 -cmd '.timeout 60000' x.db 'SELECT sum(bal), count(*) FROM acct;' "
			">> reads 2>&1; n=$((n + 1)); done; wait", d), 0);
	check = slurp("%s/w.status", d);
	EXPECT(ok, !strcmp(check, "0\n"), "the writer failed: %s/w.err", d);
	free(check);
	reads = slurp("%s/reads", d);
	for (char *line = reads, *end; *line; line = end + 1) {
		end = strchrnul(line, '\n');
		EXPECT(ok, !strncmp(line, "200000|200\n", 11), "a native reader saw %.*s",
		       (int)(end - line), line);
		nreads++;
		if (!*end)
			break;
	}
	cr_log_info("%d native reads during the writer\n", nreads);
	free(reads);
	cr_assert_eq(sh("cd %s && sqlite3 x.db 'PRAGMA integrity_check; "
			"SELECT sum(bal), count(*) FROM acct;' > final 2>&1", d), 0);
	check = slurp("%s/final", d);
	EXPECT(ok, !strcmp(check, "ok\n200000|200\n"), "afterwards: %s", check);
	free(check);
	check = slurp("%s/w.err", d);
	EXPECT(ok, strstr(check, "x.db-wal as fd"), "x.db-wal was not tracked");
	free(check);
	if (ok)
		remove_dir(d);
}

/* A script of @ntx transfers between the 200 accounts of @d/x.db, one per transaction. */
static void transfers(const char *d, const char *name, int ntx, int seed, const char *header)
{
	char *path;
	FILE *f;

	cr_assert(asprintf(&path, "%s/%s", d, name) >= 0);
	f = fopen(path, "w");
	cr_assert(f, "%s", path);
	free(path);
	fprintf(f, "%s\n", header);
	for (int i = 0; i < ntx; i++)
		fprintf(f, "BEGIN IMMEDIATE; UPDATE acct SET bal = bal - %d, pad = zeroblob(%d) "
			"WHERE id = %d; UPDATE acct SET bal = bal + %d WHERE id = %d; COMMIT;\n",
			1 + (i + seed) % 13, (i * seed) % 900, (i * 7919 + seed) % 200 + 1,
			1 + (i + seed) % 13, (i * 104729 + 3 * seed) % 200 + 1);
	cr_assert_eq(fclose(f), 0);
}

#define ACCT_DB	"sqlite3 -bail x.db 'CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER, " \
		"pad BLOB); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n " \
		"WHERE i < 200) INSERT INTO acct SELECT i, 1000, zeroblob(500) FROM n;'"

/*
 * Rollback-journal mode, processes at once, all under folio: two writers
 * (transfers between accounts in transactions) and a reader that stays open
 * and sums the balances again and again.  SQLite serialises them with fcntl
 * locks on the database, where folio writes back before an unlock and drops
 * what another process changed after a lock: the reader must always see the
 * total unchanged, and the balances at the end (transfers commute) must be
 * those of a native run of the two scripts.
 */
Test(real, sqlite_processes_at_once_under_folio, .timeout = 900)
{
	int ntx = long_run() ? 3000 : 150, nreads = long_run() ? 3000 : 300;
	char *d = new_dir(), *reads, *a, *b;
	bool ok = true;
	int n = 0;
	FILE *f;

	need("sqlite3", "sqlite3");
	transfers(d, "w1.sql", ntx, 1, ".timeout 60000\nPRAGMA cache_size=8;");
	transfers(d, "w2.sql", ntx, 2, ".timeout 60000\nPRAGMA cache_size=8;");
	cr_assert(asprintf(&a, "%s/r.sql", d) >= 0);
	f = fopen(a, "w");
	cr_assert(f);
	free(a);
	fprintf(f, ".timeout 60000\n");
	for (int i = 0; i < nreads; i++)
		fprintf(f, "SELECT sum(bal), count(*) FROM acct;\n");
	cr_assert_eq(fclose(f), 0);
	cr_assert_eq(sh("cd %s && mkdir native folio && cd native && " ACCT_DB " && "
			"sqlite3 -bail x.db < ../w1.sql > /dev/null && "
			"sqlite3 -bail x.db < ../w2.sql > /dev/null && "
			"sqlite3 x.db 'SELECT id, bal FROM acct ORDER BY id;' > ../native.bal", d),
		     0, "natively: %s", d);
	cr_assert_eq(sh("cd %s/folio && " ACCT_DB " && for s in w1 w2 r; do "
			PRELOAD "FOLIO_FILES='*.db:*.db-journal' FOLIO_LOG=info sqlite3 -bail x.db "
			"< ../$s.sql > ../$s.out 2> ../$s.err & done; wait", d), 0);
	for (const char *const *s = (const char *const[]){ "w1", "w2", "r", NULL }; *s; s++) {
		a = slurp("%s/%s.err", d, *s);
		EXPECT(ok, !strstr(a, "Error") && strstr(a, "info: tracking x.db"),
		       "sqlite3 %s failed or tracked nothing: %s/%s.err", *s, d, *s);
		free(a);
	}
	reads = slurp("%s/r.out", d);
	for (char *line = reads, *end; *line; line = end + 1) {
		end = strchrnul(line, '\n');
		EXPECT(ok, !strncmp(line, "200000|200\n", 11), "the reader saw %.*s",
		       (int)(end - line), line);
		if (++n > 5 && !ok)
			break;
		if (!*end)
			break;
	}
	EXPECT(ok, n == nreads || !ok, "%d reads of %d", n, nreads);
	free(reads);
	cr_assert_eq(sh("cd %s/folio && sqlite3 x.db 'SELECT id, bal FROM acct ORDER BY id;' "
			"> ../folio.bal && sqlite3 x.db 'PRAGMA integrity_check;' > ../check", d), 0);
	a = slurp("%s/native.bal", d);
	b = slurp("%s/folio.bal", d);
	EXPECT(ok, strlen(a) > 1000 && !strcmp(a, b),
	       "the balances differ: diff %s/native.bal %s/folio.bal", d, d);
	free(a);
	free(b);
	a = slurp("%s/check", d);
	EXPECT(ok, !strcmp(a, "ok\n"), "integrity_check: %s", a);
	free(a);
	if (ok)
		remove_dir(d);
}

/* ---- PostgreSQL -------------------------------------------------------- */

/*
 * The server under folio with its data directory tracked, its backends
 * sharing relation files through shared memory, not file locks
 * (tests/pgcheck): pgbench's invariant holds, pg_amcheck finds no damage,
 * before and after a restart, and the server logs no ERROR.
 */
Test(real, postgresql_pgbench, .timeout = 900)
{
	char *d = new_dir(), *out;
	int status;

	if (geteuid() != 0)
		cr_skip_test("needs root to run the server as the postgres user");
	need("pgbench", "postgresql-15");
	if (access("/usr/lib/postgresql/15/bin/initdb", X_OK))
		cr_assert_fail("no /usr/lib/postgresql/15/bin/initdb: scripts/install-deps "
			       "installs postgresql-15");
	cr_assert_eq(sh("chmod 755 %s", d), 0);	/* the postgres user works in it */
	status = sh("%s/tests/pgcheck '%s %s' %s/pg %d > %s/out 2>&1", SOURCE_DIR,
		    SANITIZER_RUNTIME, LIB, d, long_run() ? 60 : 5, d);
	out = slurp("%s/out", d);
	cr_assert_eq(status, 0, "%s(server log: %s/pg/log)", out, d);
	cr_assert(strstr(out, "invariant holds after a restart") &&
		  strstr(out, "pg_amcheck clean after a restart"), "%s", out);
	free(out);
	sh("rm -rf %s/pg", d);
	remove_dir(d);
}

/* ---- RocksDB ---------------------------------------------------------- */

/*
 * db_bench with a fixed seed writes the same keys and values on every run;
 * small memtables and files make it flush and compact many times.
 */
#define DB_BENCH	"db_bench --seed=42 --threads=1 --compression_type=none " \
			"--write_buffer_size=65536 --target_file_size_base=65536 " \
			"--max_bytes_for_level_base=262144 --value_size=200 "

/*
 * fillrandom then overwrite, natively and under folio (once with a cache
 * of 1M, so it evicts); then natively: ldb scans the two databases (every
 * block's checksum verified) and they must hold the same keys and values,
 * ldb checkconsistency and db_bench verifychecksum pass; readrandom under
 * folio over the folio-written database finds what it finds natively.
 */
Test(real, rocksdb_db_bench, .timeout = 900)
{
	int num = long_run() ? 200000 : 10000;
	char *d = new_dir(), *a, *b;
	bool ok = true;

	need("db_bench", "rocksdb-tools");
	/*
	 * Debian's librocksdb is not built with TSan, whose interceptors then
	 * took its own thread hand-offs for races, with or without folio
	 * preloaded.  Interceptors called from it are ignored; folio's code is
	 * instrumented, so its races, also under RocksDB's calls, still show.
	 */
	if (strstr(SANITIZER_RUNTIME, "libtsan")) {
		char *opts;

		cr_assert(asprintf(&opts, "%s ignore_noninstrumented_modules=1",
				   getenv("TSAN_OPTIONS") ? getenv("TSAN_OPTIONS") : "") >= 0);
		setenv("TSAN_OPTIONS", opts, 1);
		free(opts);
	}
	need("ldb", "rocksdb-tools");
	cr_assert_eq(sh("cd %s && " DB_BENCH "--num=%d --db=%s/native "
			"--benchmarks=fillrandom,overwrite > native.out 2>&1", d, num, d), 0,
		     "db_bench failed natively: %s/native.out", d);
	cr_assert_eq(sh("cd %s && " PRELOAD "FOLIO_FILES='%s/folio/**' FOLIO_CACHE_SIZE=1M "
			"FOLIO_LOG=info " DB_BENCH "--num=%d --db=%s/folio "
			"--benchmarks=fillrandom,overwrite > folio.out 2> folio.err", d, d, num, d),
		     0, "db_bench failed under folio: %s/folio.err", d);
	for (const char *const *run = (const char *const[]){ "native", "folio", NULL }; *run;
	     run++) {
		EXPECT(ok, sh("cd %s && ldb --db=%s/%s scan --hex > %s.scan 2>&1", d, d, *run,
			      *run) == 0, "ldb scan failed on the %s database: %s/%s.scan", *run,
		       d, *run);
		EXPECT(ok, sh("cd %s && ldb --db=%s/%s checkconsistency > %s.check 2>&1", d, d,
			      *run, *run) == 0, "ldb checkconsistency failed on the %s database:"
		       " %s/%s.check", *run, d, *run);
		EXPECT(ok, sh("cd %s && " DB_BENCH "--num=%d --db=%s/%s --use_existing_db=1 "
			      "--benchmarks=verifychecksum > %s.verify 2>&1", d, num, d, *run,
			      *run) == 0, "db_bench verifychecksum failed on the %s database: "
		       "%s/%s.verify", *run, d, *run);
	}
	EXPECT(ok, sh("cd %s && test $(wc -l < native.scan) -gt %d && "
		      "cmp -s native.scan folio.scan", d, num / 2) == 0,
	       "the databases differ: diff %s/native.scan %s/folio.scan", d, d);
	/* Reading back, natively and under folio (default settings). */
	cr_assert_eq(sh("cd %s && " DB_BENCH "--num=%d --db=%s/native --use_existing_db=1 "
			"--benchmarks=readrandom > native.readrandom 2>&1 && "
			"grep -o '([0-9]* of [0-9]* found)' native.readrandom > native.found",
			d, num, d), 0, "readrandom failed natively: %s/native.readrandom", d);
	cr_assert_eq(sh("cd %s && " PRELOAD "FOLIO_FILES='%s/folio/**' " DB_BENCH "--num=%d "
			"--db=%s/folio --use_existing_db=1 --benchmarks=readrandom "
			"> folio.readrandom 2>&1 && "
			"grep -o '([0-9]* of [0-9]* found)' folio.readrandom > folio.found",
			d, d, num, d), 0, "readrandom failed under folio: %s/folio.readrandom", d);
	a = slurp("%s/native.found", d);
	b = slurp("%s/folio.found", d);
	EXPECT(ok, a[0] && !strcmp(a, b), "readrandom found %s natively, %s under folio", a, b);
	free(a);
	free(b);
	a = slurp("%s/folio.err", d);
	EXPECT(ok, strstr(a, ".sst") && strstr(a, "info: tracking"), "no .sst file was tracked");
	free(a);
	if (ok)
		remove_dir(d);
}

/* ---- fio -------------------------------------------------------------- */

/*
 * Run the fio job @job (options) in @d/@run: under folio unless @run is
 * "native"; then verify what it left, natively, with the same job and
 * --verify_only.
 */
static bool fio_run(const char *d, const char *run, const char *job)
{
	bool native = !strcmp(run, "native"), ok = true;

	cr_assert_eq(sh("mkdir -p %s/%s", d, run), 0);
	EXPECT(ok, sh("cd %s/%s && %s fio %s --output=../%s.out > ../%s.err 2>&1",
		      d, run, native ? "" : PRELOAD "FOLIO_FILES='*.dat' FOLIO_LOG=info", job,
		      run, run) == 0, "fio failed %s: %s/%s.out, %s.err",
	       native ? "natively" : "under folio", d, run, run);
	EXPECT(ok, sh("cd %s/%s && fio %s --verify_only --output=../%s.verify > /dev/null 2>&1",
		      d, run, job, run) == 0,
	       "native fio --verify_only rejects what fio wrote %s: %s/%s.verify",
	       native ? "natively" : "under folio", d, run);
	if (!native) {
		char *err = slurp("%s/%s.err", d, run);

		EXPECT(ok, strstr(err, "info: tracking f.dat"), "f.dat was not tracked: %s", err);
		free(err);
	}
	return ok;
}

#define FIO_JOB	"--name=j --filename=f.dat --ioengine=psync --rw=randwrite " \
		"--verify=crc32c --do_verify=1 --randrepeat=1 "

/*
 * Random 4K writes over a file, then fio reads it all back and checks each
 * block's crc32c (do_verify); and, natively, again.  Twice under folio: with
 * the defaults, and with a cache smaller than the file.
 */
Test(real, fio_verify, .timeout = 900)
{
	char *d = new_dir(), *job;
	bool ok = true;

	need("fio", "fio");
	cr_assert(asprintf(&job, FIO_JOB "--bs=4k --size=%s", long_run() ? "256m" : "8m") >= 0);
	ok &= fio_run(d, "native", job);
	ok &= fio_run(d, "folio", job);
	setenv("FOLIO_CACHE_SIZE", "1M", 1);
	ok &= fio_run(d, "folio-small-cache", job);
	unsetenv("FOLIO_CACHE_SIZE");
	free(job);
	if (ok)
		remove_dir(d);
}

/*
 * Two jobs on one file, each writing and verifying its own half, blocks of
 * 512 bytes to 16K: the halves meet in the middle of a page, written by both.
 * Once as two processes (each with its own folio), once as two threads of
 * one (sharing it).
 */
Test(real, fio_two_jobs_one_file, .timeout = 900)
{
	const char *half = long_run() ? "65538k" : "4098k";
	char *d = new_dir(), *job;
	bool ok = true;

	need("fio", "fio");
	cr_assert(asprintf(&job, FIO_JOB "--bsrange=512-16k --numjobs=2 --size=%s "
			   "--offset_increment=%s", half, half) >= 0);
	ok &= fio_run(d, "native", job);
	ok &= fio_run(d, "folio", job);
	free(job);
	cr_assert(asprintf(&job, FIO_JOB "--bsrange=512-16k --numjobs=2 --size=%s "
			   "--offset_increment=%s --thread", half, half) >= 0);
	ok &= fio_run(d, "folio-threads", job);
	free(job);
	if (ok)
		remove_dir(d);
}

/* ---- A C build ---------------------------------------------------------- */

/*
 * dbench exports its own snprintf and vsnprintf, which format otherwise:
 * folio's log lines must not be formatted by them (it crashed at once with
 * FOLIO_LOG=info).  Every level, its help text and a short run.
 */
Test(real, dbench_with_its_own_snprintf, .timeout = 300)
{
	static const char *const levels[] = { "error", "warn", "info", "debug" };
	char *d = new_dir(), *native, *out;

	need("dbench", "dbench");
	sh("cd %s && dbench --help > native 2>&1", d);
	native = slurp("%s/native", d);
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		cr_expect_eq(sh("cd %s && " PRELOAD "FOLIO_FILES='*' FOLIO_LOG=%s dbench --help "
				"> out 2> err", d, levels[i]),
			     sh("cd %s && dbench --help > /dev/null 2>&1", d), "FOLIO_LOG=%s", levels[i]);
		out = slurp("%s/out", d);
		cr_expect(!strncmp(out, native, strlen(native)), "FOLIO_LOG=%s: %s", levels[i], out);
		free(out);
	}
	cr_expect_eq(sh("cd %s && mkdir run && " PRELOAD "FOLIO_FILES='%s/run/**' FOLIO_LOG=debug "
			"FOLIO_STATS=1 dbench -t 3 -D %s/run 2 > out 2> err", d, d, d), 0,
		     "dbench under folio: %s", slurp("%s/err", d));
	out = slurp("%s/out", d);
	cr_expect(strstr(out, "Throughput "), "%s", out);
	free(out);
	free(native);
	remove_dir(d);
}

/*
 * gcc (cc1, as, collect2, ld) and ar build two objects, an archive and a
 * program from folio's own sources, natively and under folio tracking the
 * whole build directory: the assembler writes its object with stdio and
 * seeks, ar rewrites its archive, the linker reads the archive and writes
 * the program.  Every output must equal the native build's, byte for byte.
 */
Test(real, c_build_is_identical, .timeout = 300)
{
	static const char *const outputs[] = { "pathmatch.o", "ptree.o", "libx.a", "crashcheck" };
	char *d = new_dir(), *err;

	need("cc", "gcc");
	need("ar", "binutils");
	for (int folio = 0; folio < 2; folio++) {
		const char *side = folio ? "folio" : "native";

		cr_assert_eq(sh("cd %s && mkdir %s && cd %s && "
				"cp " SOURCE_DIR "/shim/pathmatch.c " SOURCE_DIR "/shim/ptree.c "
				SOURCE_DIR "/tests/prog/crashcheck.c . && "
				"export %s FOLIO_FILES='%s/%s/**' FOLIO_LOG=info && "
				"{ cc -O2 -D_GNU_SOURCE -I" SOURCE_DIR "/shim -I" SOURCE_DIR "/include "
				"-c pathmatch.c ptree.c && ar rcs libx.a pathmatch.o ptree.o && "
				"cc -O2 -I" SOURCE_DIR "/include crashcheck.c libx.a -o crashcheck "
				"-lpthread; } 2> ../%s.err", d, side, side,
				folio ? PRELOAD : "FOLIO_DISABLE=1", d, side, side), 0,
			     "the %s build failed: %s", side, slurp("%s/%s.err", d, side));
	}
	err = slurp("%s/folio.err", d);
	cr_expect(strstr(err, "info: tracking pathmatch.o") && strstr(err, "info: tracking libx.a") &&
		  strstr(err, "info: tracking crashcheck as"), "the build's files were not tracked: %s",
		  err);
	free(err);
	for (size_t i = 0; i < sizeof(outputs) / sizeof(outputs[0]); i++)
		cr_expect_eq(sh("cmp %s/native/%s %s/folio/%s", d, outputs[i], d, outputs[i]), 0,
			     "%s differs", outputs[i]);
	cr_expect_eq(sh("cd %s/folio && ./crashcheck plain", d), 0, "the program built does not run");
	remove_dir(d);
}
