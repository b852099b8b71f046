/*
 * crash.h - the crash report: when folio itself faults, say where and what
 * it held, then let the signal end the process as it would without folio.
 *
 * Owns folio's handler for SIGSEGV, SIGBUS, SIGILL and SIGFPE.  It is
 * installed only over SIG_DFL: a program, sanitizer or preloaded library
 * that handles one of them first keeps it, and a handler the program
 * installs later replaces folio's (folio never re-installs it).  Faults
 * that are not folio's are left alone, silently: the handler restores
 * SIG_DFL and returns, the instruction faults again and the process dies
 * exactly as it would natively (same signal, same siginfo, core dump).
 *
 * Calls unwind, writeback (writeback_crash_state), page (page_store_holds:
 * a fault in page memory is never a bad buffer), uaccess (uaccess_fixup)
 * and log.
 */
#ifndef FOLIO_CRASH_H
#define FOLIO_CRASH_H

/*
 * Install the handler (libunwind, for its backtraces, is loaded at the
 * first tracked open: cache_ofile_opened()).  Called by
 * the constructor after config_load(), when folio is enabled; normal
 * context, before the program's own constructors.  Idempotent.
 */
void crash_handler_install(void);

#endif
