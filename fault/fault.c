/* SPDX-License-Identifier: MIT */
/*
 * fault/fault.c — the fault-injection rules: one parser, one matcher.
 *
 * The grammar and the hooks are described in fault.h.  Hooks sit in
 * io/io.c (backing reads and writes, slow I/O, short writes),
 * bounce/pool.c (bounce:starve) and device/device.c (frame allocation,
 * copies); each calls fault_hit(), which costs one relaxed load while
 * fault injection is off.
 *
 * Rule sets.  Rules come from HMMFS_FAULT (parsed once, at start) and
 * from HMMFS_FAULT_FILE (parsed again when the file changes).  Each
 * source's rules live in one immutable struct fault_set, published with
 * an atomic pointer; a hook loads it (acquire, pairing with the release
 * in fault_publish()) and walks it without a lock.  A set that was
 * replaced may still be walked by a hook, so it is never freed: it goes
 * on a list and stays (a few KiB per change of the file, and the file
 * changes a handful of times in a test).  The rules' counters (seen,
 * fired) are atomics inside the set, so a new file starts them afresh.
 *
 * Run-time control without signals.  A hook that finds the file's last
 * check older than 10 ms takes reload_lock with a trylock (so only one
 * thread stats the file, and no hook ever waits for another), stats it,
 * and reparses it only if its inode, size, mtime or ctime changed.  No
 * signal handler is involved, so nothing async-signal-unsafe can run in
 * one; the price is that a change is seen by the first hook that runs at
 * least 10 ms after the previous check.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fault/fault.h"
#include "lib/compiler.h"
#include "lib/time.h"

#define FAULT_MAX_RULES	32
#define FAULT_NAME_MAX	128
#define FAULT_FILE_MAX	8192
#define RELOAD_NS	10000000ull	/* check the file at most every 10 ms */

enum rule_kind {
	RK_READ, RK_WRITE, RK_DEV_ALLOC, RK_DEV_COPY, RK_BOUNCE, RK_SLOW,
	RK_DEV_LOST, RK_CL_BUILD,
};

/**
 * struct fault_rule - one parsed rule.
 * @kind:   enum rule_kind.
 * @action: -errno to fail with, FAULT_SHORT, FAULT_STARVE, or 0 (slow_io).
 * @rate:   fire with this probability (1: always).
 * @after:  let this many matching calls through first.
 * @count:  fire at most this many times (0: no limit).
 * @ms:     slow_io: the wait.
 * @op:     slow_io: 0 both, 1 reads, 2 writes.
 * @dir:    dev_copy: the direction, or FAULT_DIR_ANY.
 * @name:   backing points: a substring of the backing path, or "".
 * @seen:   matching calls so far.  @fired: faults injected so far.
 * @told:   the first firing was logged.
 * @text:   the rule as written, for the log.
 */
struct fault_rule {
	enum rule_kind kind;
	int action;
	double rate;
	uint64_t after, count;
	unsigned int ms;
	int op;
	enum fault_dir dir;
	char name[FAULT_NAME_MAX];
	_Atomic uint64_t seen, fired;
	atomic_bool told;
	char text[FAULT_NAME_MAX + 64];
};

/* An immutable list of rules, never freed once published (see above). */
struct fault_set {
	struct fault_set *older;	/* the list of every set ever made */
	size_t n;
	struct fault_rule rules[FAULT_MAX_RULES];
};

atomic_int fault_enabled;

static _Atomic(struct fault_set *) env_rules, file_rules;
static struct fault_set *all_sets;	/* under reload_lock (or before threads) */
static _Atomic uint64_t rng_state;

/* The rules file: its path and what it looked like at the last check. */
static char file_path[PATH_MAX];
static pthread_mutex_t reload_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic uint64_t next_check_ns;
static struct stat file_seen;	/* under reload_lock */
static bool file_existed;	/* under reload_lock */

static const struct { const char *name; int err; } errnames[] = {
	{ "eio", EIO }, { "enospc", ENOSPC }, { "enomem", ENOMEM },
	{ "edquot", EDQUOT }, { "efbig", EFBIG }, { "erofs", EROFS },
	{ "eagain", EAGAIN },
};

static const struct {
	const char *name;
	enum rule_kind kind;
	int dflt;	/* action without an ERR word */
} points[] = {
	{ "backing_read", RK_READ, -EIO },
	{ "backing_write", RK_WRITE, -EIO },
	{ "dev_alloc", RK_DEV_ALLOC, -ENOSPC },
	{ "dev_copy", RK_DEV_COPY, -EIO },
	{ "bounce", RK_BOUNCE, FAULT_STARVE },
	{ "slow_io", RK_SLOW, 0 },
	{ "dev_lost", RK_DEV_LOST, -ENODEV },
	{ "cl_build", RK_CL_BUILD, -EINVAL },
};

static uint64_t now_ns(void)
{
	return mono_coarse_ns();
}

/* splitmix64 over a shared counter: threads draw distinct numbers. */
static double rng_unit(void)
{
	uint64_t z = atomic_fetch_add_explicit(&rng_state, 0x9e3779b97f4a7c15ull,
					       memory_order_relaxed);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return (double)(z >> 11) / 9007199254740992.0;	/* [0, 1) */
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	if (*s < '0' || *s > '9')
		return -1;
	*out = strtoull(s, &end, 10);
	return errno || *end ? -1 : 0;
}

/* Parse one word of a rule after its point into @r. */
static int parse_word(struct fault_rule *r, const char *w, char *err,
		      size_t errlen)
{
	const char *eq = strchr(w, '=');
	uint64_t v;
	char *end;

	for (size_t i = 0; !eq && i < ARRAY_SIZE(errnames); i++) {
		if (strcmp(w, errnames[i].name))
			continue;
		if (r->kind == RK_BOUNCE || r->kind == RK_SLOW)
			goto bad_for_point;
		r->action = -errnames[i].err;
		return 0;
	}
	if (!strcmp(w, "short")) {
		if (r->kind != RK_WRITE)
			goto bad_for_point;
		r->action = FAULT_SHORT;
		return 0;
	}
	if (!strcmp(w, "starve")) {
		if (r->kind != RK_BOUNCE)
			goto bad_for_point;
		r->action = FAULT_STARVE;
		return 0;
	}
	if (!eq) {
		snprintf(err, errlen, "unknown word '%s' (an errno name such as eio "
			 "or enospc, short, starve, or KEY=VALUE)", w);
		return -EINVAL;
	}
	if (!strncmp(w, "rate=", 5)) {
		errno = 0;
		r->rate = strtod(w + 5, &end);
		if (errno || *end || end == w + 5 || !(r->rate > 0 && r->rate <= 1)) {
			snprintf(err, errlen, "'%s': rate must be in (0, 1]", w);
			return -EINVAL;
		}
	} else if (!strncmp(w, "after=", 6) || !strncmp(w, "count=", 6)) {
		if (parse_u64(w + 6, &v)) {
			snprintf(err, errlen, "'%s': not a whole number", w);
			return -EINVAL;
		}
		*(w[0] == 'a' ? &r->after : &r->count) = v;
	} else if (!strncmp(w, "ms=", 3)) {
		if (r->kind != RK_SLOW)
			goto bad_for_point;
		if (parse_u64(w + 3, &v) || v > 60000) {
			snprintf(err, errlen, "'%s': ms must be 0 to 60000", w);
			return -EINVAL;
		}
		r->ms = (unsigned int)v;
	} else if (!strncmp(w, "name=", 5)) {
		if (r->kind != RK_READ && r->kind != RK_WRITE && r->kind != RK_SLOW)
			goto bad_for_point;
		if (!w[5] || strlen(w + 5) >= sizeof(r->name)) {
			snprintf(err, errlen, "'%s': name must be 1 to %zu bytes", w,
				 sizeof(r->name) - 1);
			return -EINVAL;
		}
		strcpy(r->name, w + 5);
	} else if (!strncmp(w, "op=", 3)) {
		if (r->kind != RK_SLOW)
			goto bad_for_point;
		if (!strcmp(w + 3, "read"))
			r->op = 1;
		else if (!strcmp(w + 3, "write"))
			r->op = 2;
		else
			goto bad_value;
	} else if (!strncmp(w, "dir=", 4)) {
		if (r->kind != RK_DEV_COPY)
			goto bad_for_point;
		if (!strcmp(w + 4, "h2d"))
			r->dir = FAULT_DIR_H2D;
		else if (!strcmp(w + 4, "d2h"))
			r->dir = FAULT_DIR_D2H;
		else if (!strcmp(w + 4, "d2d"))
			r->dir = FAULT_DIR_D2D;
		else
			goto bad_value;
	} else {
		snprintf(err, errlen, "unknown key in '%s' (rate, after, count, ms, "
			 "name, op, dir)", w);
		return -EINVAL;
	}
	return 0;

bad_value:
	snprintf(err, errlen, "'%s': unknown value", w);
	return -EINVAL;
bad_for_point:
	snprintf(err, errlen, "'%s' does not apply to %s", w,
		 points[r->kind].name);
	return -EINVAL;
}

/* Parse one rule ("point:word:word") into @r.  @s is modified. */
static int parse_rule(struct fault_rule *r, char *s, char *err, size_t errlen)
{
	char *save = NULL, *w = strtok_r(s, ":", &save);
	size_t i;
	int ret;

	for (i = 0; i < ARRAY_SIZE(points); i++)
		if (!strcmp(w, points[i].name))
			break;
	if (i == ARRAY_SIZE(points)) {
		snprintf(err, errlen, "unknown fault point '%s' (backing_read, "
			 "backing_write, dev_alloc, dev_copy, bounce, slow_io, dev_lost, cl_build)", w);
		return -EINVAL;
	}
	r->kind = points[i].kind;
	r->action = points[i].dflt;
	r->rate = 1;
	while ((w = strtok_r(NULL, ":", &save))) {
		ret = parse_word(r, w, err, errlen);
		if (ret)
			return ret;
	}
	if (r->kind == RK_SLOW && !r->ms) {
		snprintf(err, errlen, "slow_io needs ms=N (N > 0)");
		return -EINVAL;
	}
	return 0;
}

/* Parse @spec into @set.  Return: 0 or -EINVAL with @err set. */
static int parse_spec(const char *spec, struct fault_set *set, char *err,
		      size_t errlen)
{
	char *copy = strdup(spec), *save = NULL, *tok, msg[256];
	int ret = 0;

	if (!copy) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	/* comments run to the end of their line */
	for (char *p = copy; (p = strchr(p, '#'));)
		while (*p && *p != '\n')
			*p++ = ' ';
	set->n = 0;
	for (tok = strtok_r(copy, ",;\n", &save); tok;
	     tok = strtok_r(NULL, ",;\n", &save)) {
		struct fault_rule *r;
		char *end;

		tok += strspn(tok, " \t\r");
		end = tok + strlen(tok);
		while (end > tok && strchr(" \t\r", end[-1]))
			*--end = '\0';
		if (!*tok)
			continue;
		if (set->n == FAULT_MAX_RULES) {
			snprintf(err, errlen, "more than %d rules", FAULT_MAX_RULES);
			ret = -EINVAL;
			break;
		}
		r = &set->rules[set->n];
		memset(r, 0, sizeof(*r));
		snprintf(r->text, sizeof(r->text), "%s", tok);
		ret = parse_rule(r, tok, msg, sizeof(msg));
		if (ret) {
			snprintf(err, errlen, "rule '%s': %s", r->text, msg);
			break;
		}
		set->n++;
	}
	free(copy);
	return ret;
}

int fault_spec_check(const char *spec, char *err, size_t errlen)
{
	struct fault_set *set = malloc(sizeof(*set));
	int ret;

	if (!set) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ret = parse_spec(spec, set, err, errlen);
	free(set);
	return ret;
}

/* Make @set the rules of @slot; the old set stays readable (see top). */
static void fault_publish(_Atomic(struct fault_set *) *slot,
			  struct fault_set *set)
{
	set->older = all_sets;
	all_sets = set;
	/* pairs with the acquire load in fault_hit_slow() */
	atomic_store_explicit(slot, set, memory_order_release);
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev &&
	       a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	       a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/*
 * Read the rules file again if it changed.  Context: reload_lock held.
 * A file that cannot be read or parsed leaves the current rules.
 */
static void file_reload_locked(void)
{
	char buf[FAULT_FILE_MAX], err[256];
	struct fault_set *set;
	struct stat st;
	ssize_t n;
	int fd;

	fd = open(file_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (file_existed) {	/* removed: no rules from the file */
			set = calloc(1, sizeof(*set));
			if (set)
				fault_publish(&file_rules, set);
			file_existed = false;
			fprintf(stderr, "hmmfs: fault: %s gone: no rules from it\n",
				file_path);
		}
		return;
	}
	if (fstat(fd, &st) < 0 || (file_existed && same_file(&st, &file_seen))) {
		close(fd);
		return;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return;
	buf[n] = '\0';
	file_seen = st;
	file_existed = true;
	set = malloc(sizeof(*set));
	if (!set)
		return;
	if (parse_spec(buf, set, err, sizeof(err))) {
		fprintf(stderr, "hmmfs: fault: %s: %s; rules unchanged\n",
			file_path, err);
		free(set);
		return;
	}
	fault_publish(&file_rules, set);
	fprintf(stderr, "hmmfs: fault: %zu rule%s from %s\n", set->n,
		set->n == 1 ? "" : "s", file_path);
}

static void file_check(void)
{
	uint64_t now = now_ns();

	if (now < atomic_load_explicit(&next_check_ns, memory_order_relaxed))
		return;
	if (pthread_mutex_trylock(&reload_lock))
		return;	/* another thread is checking */
	atomic_store_explicit(&next_check_ns, now + RELOAD_NS, memory_order_relaxed);
	file_reload_locked();
	pthread_mutex_unlock(&reload_lock);
}

int fault_init(char *err, size_t errlen)
{
	const char *spec = getenv("HMMFS_FAULT");
	const char *file = getenv("HMMFS_FAULT_FILE");
	const char *seed = getenv("HMMFS_FAULT_SEED");
	struct fault_set *set;
	uint64_t s;
	int ret;

	if (seed && *seed) {
		if (parse_u64(seed, &s)) {
			snprintf(err, errlen, "HMMFS_FAULT_SEED: not a number: '%s'", seed);
			return -EINVAL;
		}
	} else {
		s = now_ns() ^ ((uint64_t)getpid() << 32);
	}
	atomic_store(&rng_state, s);
	if (spec && *spec) {
		set = malloc(sizeof(*set));
		if (!set) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		ret = parse_spec(spec, set, err, errlen);
		if (ret) {
			free(set);
			return ret;
		}
		fault_publish(&env_rules, set);
		fprintf(stderr, "hmmfs: fault injection on: HMMFS_FAULT=%s\n", spec);
	}
	if (file && *file) {
		if (strlen(file) >= sizeof(file_path) || file[0] != '/') {
			snprintf(err, errlen, "HMMFS_FAULT_FILE must be an absolute path");
			return -EINVAL;
		}
		strcpy(file_path, file);
		pthread_mutex_lock(&reload_lock);
		file_reload_locked();
		pthread_mutex_unlock(&reload_lock);
		fprintf(stderr, "hmmfs: fault injection on: HMMFS_FAULT_FILE=%s\n", file);
	}
	atomic_store(&fault_enabled, (spec && *spec) || (file && *file));
	return 0;
}

/* Does the backing file @fd's path contain @name? */
static bool fd_name_matches(int fd, const char *name)
{
	char link[64], path[PATH_MAX];
	ssize_t n;

	if (fd < 0)
		return false;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n < 0)
		return false;
	path[n] = '\0';
	return strstr(path, name) != NULL;
}

static bool rule_matches(const struct fault_rule *r, enum fault_point pt,
			 const struct fault_where *w)
{
	switch (r->kind) {
	case RK_READ:
		if (pt != FAULT_BACKING_READ)
			return false;
		break;
	case RK_WRITE:
		if (pt != FAULT_BACKING_WRITE)
			return false;
		break;
	case RK_SLOW:
		if ((pt != FAULT_BACKING_READ && pt != FAULT_BACKING_WRITE) ||
		    (r->op == 1 && pt != FAULT_BACKING_READ) ||
		    (r->op == 2 && pt != FAULT_BACKING_WRITE))
			return false;
		break;
	case RK_DEV_ALLOC:
		return pt == FAULT_DEV_ALLOC;
	case RK_DEV_COPY:
		return pt == FAULT_DEV_COPY &&
		       (r->dir == FAULT_DIR_ANY || (w && w->dir == r->dir));
	case RK_BOUNCE:
		return pt == FAULT_BOUNCE;
	case RK_DEV_LOST:
		return pt == FAULT_DEV_LOST;
	case RK_CL_BUILD:
		return pt == FAULT_CL_BUILD;
	}
	return !r->name[0] || (w && fd_name_matches(w->fd, r->name));
}

/* Apply @set to a call at @pt.  Return: as fault_hit(), or 0 to go on. */
static int set_apply(struct fault_set *set, enum fault_point pt,
		     const struct fault_where *w)
{
	for (size_t i = 0; set && i < set->n; i++) {
		struct fault_rule *r = &set->rules[i];
		uint64_t seen;

		if (!rule_matches(r, pt, w))
			continue;
		seen = atomic_fetch_add_explicit(&r->seen, 1, memory_order_relaxed);
		if (seen < r->after || (r->rate < 1 && rng_unit() >= r->rate))
			continue;
		if (r->count && atomic_fetch_add_explicit(&r->fired, 1,
				memory_order_relaxed) >= r->count)
			continue;
		if (!atomic_exchange_explicit(&r->told, true, memory_order_relaxed))
			fprintf(stderr, "hmmfs: fault: '%s' fired\n", r->text);
		if (r->kind == RK_SLOW) {
			nanosleep(&(struct timespec){ .tv_sec = r->ms / 1000,
				  .tv_nsec = (long)(r->ms % 1000) * 1000000 }, NULL);
			continue;
		}
		return r->action;
	}
	return 0;
}

int fault_hit_slow(enum fault_point pt, const struct fault_where *w)
{
	int ret;

	if (file_path[0])
		file_check();
	/* acquire: pairs with the release in fault_publish() */
	ret = set_apply(atomic_load_explicit(&env_rules, memory_order_acquire), pt, w);
	if (!ret)
		ret = set_apply(atomic_load_explicit(&file_rules,
						     memory_order_acquire), pt, w);
	return ret;
}
