/* SPDX-License-Identifier: MIT */
/* fs/devio.h — our own I/O on /dev/fuse, for KILLPRIV_V2 (devio.c). */
#ifndef HMMFS_FS_DEVIO_H
#define HMMFS_FS_DEVIO_H

#include "fs/fs.h"
#include <stdbool.h>

/**
 * devio_install() - do the session's /dev/fuse I/O here, so that the INIT
 * reply can take FUSE_HANDLE_KILLPRIV_V2 (if @killpriv_v2 and the kernel
 * offers it).  Call after fuse_session_mount(), before serving.
 * Return: 0 or -errno (libfuse's own I/O stays).
 */
int devio_install(struct fuse_session *se, bool killpriv_v2);

/*
 * The request this thread serves (WRITE, OPEN, CREATE, SETATTR) asks us
 * to clear setuid/setgid: its caller lacks CAP_FSETID.
 */
bool devio_kill_suidgid(void);

#endif
