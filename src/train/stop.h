/* SIGINT/SIGTERM while training: the handler only records the signal; the loop finishes the
 * current update, writes a checkpoint and returns. The handler is one-shot (SA_RESETHAND), so
 * a second Ctrl-C kills the process at once. Private to src/train. */
#ifndef DISTIL_STOP_H
#define DISTIL_STOP_H

void dl_stop_install(void);
void dl_stop_restore(void);
int dl_stop_requested(void); /* the signal number, or 0 */

#endif
