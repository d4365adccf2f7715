#include "base.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int dl_read_file(const char *path, char **out, size_t *len, dl_error *err) {
    *out = NULL;
    if (len) *len = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return dl_fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return dl_fail(err, "%s: not a regular file", path);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) { close(fd); return dl_fail(err, "%s: out of memory (%zu bytes)", path, n); }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) { free(buf); close(fd); return dl_fail(err, "%s: read failed", path); }
        got += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    *out = buf;
    if (len) *len = n;
    return 0;
}

static int write_all(int fd, const void *data, size_t len) {
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static void dir_of(const char *path, char *dir, size_t n) {
    const char *slash = strrchr(path, '/');
    if (!slash) { snprintf(dir, n, "."); return; }
    size_t k = (size_t)(slash - path);
    if (k == 0) k = 1;
    if (k >= n) k = n - 1;
    memcpy(dir, path, k);
    dir[k] = 0;
}

int dl_fsync_dir(const char *path, dl_error *err) {
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return dl_fail(err, "%s: cannot open folder: %s", path, strerror(errno));
    fsync(fd);
    close(fd);
    return 0;
}

int dl_atomic_open(dl_atomic_file *f, const char *path, dl_error *err) {
    f->fd = -1;
    f->write_errno = 0;
    if ((size_t)snprintf(f->path, sizeof f->path, "%s", path) >= sizeof f->path ||
        (size_t)snprintf(f->tmp, sizeof f->tmp, "%s.tmp.%d", path, (int)getpid()) >= sizeof f->tmp)
        return dl_fail(err, "%s: path too long", path);
    f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (f->fd < 0) return dl_fail(err, "%s: cannot create: %s", f->tmp, strerror(errno));
    return 0;
}

int dl_atomic_write(dl_atomic_file *f, const void *data, size_t len) {
    if (f->write_errno) return -1;
    if (write_all(f->fd, data, len) == 0) return 0;
    f->write_errno = errno ? errno : EIO;
    return -1;
}

int dl_atomic_pwrite(dl_atomic_file *f, const void *data, size_t len, uint64_t offset) {
    if (f->write_errno) return -1;
    const char *p = data;
    while (len > 0) {
        ssize_t w = pwrite(f->fd, p, len, (off_t)offset);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            f->write_errno = errno ? errno : EIO;
            return -1;
        }
        p += w;
        len -= (size_t)w;
        offset += (uint64_t)w;
    }
    return 0;
}

void dl_atomic_abort(dl_atomic_file *f) {
    if (f->fd < 0) return;
    close(f->fd);
    unlink(f->tmp);
    f->fd = -1;
}

int dl_atomic_commit(dl_atomic_file *f, dl_error *err) {
    int e = f->write_errno;
    if (!e && fsync(f->fd) != 0) e = errno;
    if (close(f->fd) != 0 && !e) e = errno;
    f->fd = -1;
    if (!e && rename(f->tmp, f->path) != 0) e = errno;
    if (e) {
        unlink(f->tmp);
        return dl_fail(err, "%s: write failed: %s", f->path, strerror(e));
    }
    char dir[4096];
    dir_of(f->path, dir, sizeof dir);
    return dl_fsync_dir(dir, err);
}

int dl_write_file_atomic(const char *path, const void *data, size_t len, dl_error *err) {
    dl_atomic_file f;
    if (dl_atomic_open(&f, path, err)) return -1;
    dl_atomic_write(&f, data, len);
    return dl_atomic_commit(&f, err);
}

int dl_mkdir_p(const char *path, dl_error *err) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return dl_fail(err, "bad folder path '%s'", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != 0) continue;
        char c = buf[i];
        buf[i] = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return dl_fail(err, "%s: cannot create folder: %s", buf, strerror(errno));
        buf[i] = c;
    }
    if (!dl_is_dir(path)) return dl_fail(err, "%s: exists and is not a folder", path);
    return 0;
}

int dl_path_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

int dl_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int dl_rm_rf(const char *path, dl_error *err) {
    struct stat st;
    if (lstat(path, &st) != 0) return 0;
    if (!S_ISDIR(st.st_mode)) {
        if (unlink(path) != 0) return dl_fail(err, "%s: cannot remove: %s", path, strerror(errno));
        return 0;
    }
    DIR *d = opendir(path);
    if (!d) return dl_fail(err, "%s: cannot open folder", path);
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char sub[4096];
        rc = dl_path_join(sub, sizeof sub, path, e->d_name, err);
        if (rc == 0) rc = dl_rm_rf(sub, err);
    }
    closedir(d);
    if (rc == 0 && rmdir(path) != 0) return dl_fail(err, "%s: cannot remove: %s", path, strerror(errno));
    return rc;
}

int dl_path_join(char *out, size_t n, const char *a, const char *b, dl_error *err) {
    size_t la = strlen(a);
    int need_slash = la > 0 && a[la - 1] != '/';
    int w = snprintf(out, n, "%s%s%s", a, need_slash ? "/" : "", b);
    if (w < 0 || (size_t)w >= n) return dl_fail(err, "path too long: %s/%s", a, b);
    return 0;
}

int dl_copy_file(const char *src, const char *dst, dl_error *err) {
    char *data;
    size_t len;
    if (dl_read_file(src, &data, &len, err)) return -1;
    int rc = dl_write_file_atomic(dst, data, len, err);
    free(data);
    return rc;
}

int dl_mmap_open(dl_mmap *m, const char *path, dl_error *err) {
    m->data = NULL;
    m->len = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return dl_fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return dl_fail(err, "%s: not a regular file", path);
    }
    if (st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) { close(fd); return dl_fail(err, "%s: mmap failed: %s", path, strerror(errno)); }
        m->data = p;
        m->len = (size_t)st.st_size;
    }
    close(fd);
    return 0;
}

void dl_mmap_close(dl_mmap *m) {
    if (m->data) munmap(m->data, m->len);
    m->data = NULL;
    m->len = 0;
}

int dl_mul_size(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return -1;
    *out = a * b;
    return 0;
}

int dl_add_size(size_t a, size_t b, size_t *out) {
    if (b > SIZE_MAX - a) return -1;
    *out = a + b;
    return 0;
}
