/*
 * Unit tests of shim/debug.h's lock checks: they read glibc's record of a
 * mutex's owner and a rwlock's writer, which a FOLIO_DEBUG build asserts
 * on; a glibc that kept them otherwise would make every assertion wrong.
 */
#define FOLIO_DEBUG 1
#include <criterion/criterion.h>
#include <pthread.h>

#include "debug.h"

static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_rwlock_t rwlock = PTHREAD_RWLOCK_INITIALIZER;

static void *held_here(void *arg)
{
	(void)arg;
	return (void *)(long)(mutex_held(&mutex) || rwlock_held_exclusive(&rwlock));
}

static bool held_by_another_thread(void)
{
	pthread_t t;
	void *ret;

	cr_assert_eq(pthread_create(&t, NULL, held_here, NULL), 0);
	cr_assert_eq(pthread_join(t, &ret), 0);
	return ret != NULL;
}

Test(debug, a_mutex_is_held_by_its_owner_only)
{
	cr_expect(!mutex_held(&mutex));
	pthread_mutex_lock(&mutex);
	cr_expect(mutex_held(&mutex));
	cr_expect(!held_by_another_thread());
	pthread_mutex_unlock(&mutex);
	cr_expect(!mutex_held(&mutex));
}

Test(debug, a_rwlock_is_held_exclusive_by_its_writer_only)
{
	cr_expect(!rwlock_held_exclusive(&rwlock));
	pthread_rwlock_rdlock(&rwlock);
	cr_expect(!rwlock_held_exclusive(&rwlock), "held shared is not exclusive");
	pthread_rwlock_unlock(&rwlock);
	pthread_rwlock_wrlock(&rwlock);
	cr_expect(rwlock_held_exclusive(&rwlock));
	cr_expect(!held_by_another_thread());
	pthread_rwlock_unlock(&rwlock);
	cr_expect(!rwlock_held_exclusive(&rwlock));
}
