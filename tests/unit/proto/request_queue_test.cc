// Tests for RequestQueue: ReadyForQuery owed per Query/Sync/FunctionCall, COPY IN bookkeeping.
#include "proto/request_queue.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string_view>
#include <vector>

namespace sluice::proto {
namespace {

// Forwards each frontend message type in `types` (one char per message) to the queue.
void send(RequestQueue& q, std::string_view types) {
  for (char t : types)
    ASSERT_TRUE(q.on_frontend(t)) << "message " << t;
}

// One ReadyForQuery per status byte in `statuses`.
void rfq(RequestQueue& q, std::string_view statuses) {
  for (char s : statuses)
    q.on_ready_for_query(s);
}

TEST(RequestQueue, StartsIdle) {
  RequestQueue q;
  EXPECT_TRUE(q.idle());
  EXPECT_EQ(q.rfq_owed(), 0u);
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.tx_status(), 'I');
  EXPECT_FALSE(q.in_copy_in());
}

TEST(RequestQueue, SimpleQuery) {
  RequestQueue q;
  send(q, "Q");
  EXPECT_FALSE(q.idle());
  EXPECT_EQ(q.rfq_owed(), 1u);
  q.on_command_complete();
  EXPECT_FALSE(q.idle());
  rfq(q, "I");
  EXPECT_TRUE(q.idle());
  EXPECT_EQ(q.size(), 0u);
}

TEST(RequestQueue, ExtendedMessagesAreQueuedButOweNoReadyForQuery) {
  RequestQueue q;
  // Parse, Bind, Describe, Execute, Close get answers of their own; Flush and CopyData none.
  send(q, "PBDECHd");
  EXPECT_EQ(q.rfq_owed(), 0u);
  EXPECT_EQ(q.size(), 5u);
  EXPECT_TRUE(q.on_backend('1'));  // ParseComplete
  EXPECT_TRUE(q.on_backend('2'));  // BindComplete
  EXPECT_TRUE(q.on_backend('n'));  // NoData answers the Describe
  EXPECT_TRUE(q.on_backend('C'));  // CommandComplete ends the Execute
  EXPECT_TRUE(q.on_backend('3'));  // CloseComplete
  EXPECT_EQ(q.size(), 0u);
  EXPECT_FALSE(q.idle()) << "no Sync yet";
}

// An extended-query batch is not finished before its Sync is answered, even though nothing
// owes a ReadyForQuery yet (the server may still be sending its results).
TEST(RequestQueue, ExtendedQueryMessagesWaitForTheirSync) {
  RequestQueue q;
  send(q, "PBDE");
  EXPECT_FALSE(q.idle());
  send(q, "H");
  EXPECT_FALSE(q.idle()) << "Flush does not end the batch";
  send(q, "S");
  EXPECT_FALSE(q.idle());
  q.on_command_complete();
  rfq(q, "I");
  EXPECT_TRUE(q.idle());
}

TEST(RequestQueue, CopyDataAloneIsNotABatch) {
  RequestQueue q;
  send(q, "d");
  EXPECT_TRUE(q.idle()) << "CopyData outside COPY is ignored by the server";
  EXPECT_EQ(q.size(), 0u);
}

TEST(RequestQueue, FunctionCallOwesReadyForQuery) {
  RequestQueue q;
  send(q, "F");
  EXPECT_EQ(q.rfq_owed(), 1u);
  rfq(q, "I");
  EXPECT_TRUE(q.idle());
}

TEST(RequestQueue, PipelinedExtendedBatches) {
  RequestQueue q;
  send(q, "PBDES");
  send(q, "BES");
  send(q, "PBES");
  EXPECT_EQ(q.rfq_owed(), 3u);
  q.on_command_complete();
  rfq(q, "T");
  EXPECT_EQ(q.rfq_owed(), 2u);
  EXPECT_EQ(q.tx_status(), 'T');
  q.on_command_complete();
  rfq(q, "T");
  EXPECT_FALSE(q.idle());
  q.on_command_complete();
  rfq(q, "I");
  EXPECT_TRUE(q.idle());
  EXPECT_EQ(q.size(), 0u);
}

TEST(RequestQueue, ErrorInTheMiddleOfAPipeline) {
  RequestQueue q;
  send(q, "PBES");
  send(q, "PBES");  // fails: the server skips to this batch's Sync and answers it
  send(q, "PBES");
  q.on_command_complete();
  rfq(q, "I");
  q.on_error_response();
  EXPECT_EQ(q.rfq_owed(), 2u) << "an error outside COPY drops nothing";
  rfq(q, "I");
  EXPECT_EQ(q.rfq_owed(), 1u);
  q.on_command_complete();
  rfq(q, "I");
  EXPECT_TRUE(q.idle());
}

// Found by the live fuzzer: BEGIN, then an Execute that fails and a Query before any Sync. The
// server skips the Query too and ignores everything until a Sync, so the connection is not idle
// (a ROLLBACK sent now would get no answer).
TEST(RequestQueue, QueryAfterAFailedExtendedMessageWaitsForASync) {
  RequestQueue q;
  send(q, "Q");
  rfq(q, "T");
  send(q, "EQ");
  q.on_error_response();
  EXPECT_EQ(q.rfq_owed(), 0u) << "the Query is skipped with the failed Execute";
  EXPECT_FALSE(q.idle()) << "the server ignores everything until a Sync";
  send(q, "S");
  rfq(q, "E");
  EXPECT_TRUE(q.idle());
  EXPECT_EQ(q.tx_status(), 'E');
}

// Found by the live fuzzer: a Flush the server cannot parse fails like any extended-query
// message, and the server skips to the next Sync. The Flush has no entry: nothing is owed when
// the error comes, yet the connection is not idle.
TEST(RequestQueue, FailedFlushWaitsForASync) {
  RequestQueue q;
  send(q, "Q");
  rfq(q, "I");
  ASSERT_TRUE(q.idle());
  send(q, "H");
  q.on_error_response();
  EXPECT_FALSE(q.idle()) << "the server ignores everything until a Sync";
  send(q, "S");
  rfq(q, "I");
  EXPECT_TRUE(q.idle());
}

TEST(RequestQueue, ErrorInsideATransactionBlock) {
  RequestQueue q;
  send(q, "Q");
  rfq(q, "T");
  EXPECT_EQ(q.tx_status(), 'T');
  send(q, "Q");
  q.on_error_response();
  rfq(q, "E");
  EXPECT_TRUE(q.idle());
  EXPECT_EQ(q.tx_status(), 'E');
  send(q, "Q");  // ROLLBACK
  q.on_command_complete();
  rfq(q, "I");
  EXPECT_EQ(q.tx_status(), 'I');
}

TEST(RequestQueue, TxStatusComesFromEveryReadyForQuery) {
  RequestQueue q;
  for (char s : {'T', 'E', 'I', 'T', 'I'}) {
    send(q, "Q");
    rfq(q, std::string_view(&s, 1));
    EXPECT_EQ(q.tx_status(), s);
  }
}

// psql: Query "COPY t FROM STDIN", CopyInResponse, CopyData..., CopyDone, CommandComplete, RFQ.
TEST(RequestQueue, CopyFromStdinSimpleSuccess) {
  RequestQueue q;
  send(q, "Q");
  q.on_copy_in_response();
  EXPECT_TRUE(q.in_copy_in());
  send(q, "ddd");
  send(q, "c");
  EXPECT_EQ(q.rfq_owed(), 1u);
  q.on_command_complete();
  EXPECT_FALSE(q.in_copy_in());
  EXPECT_EQ(q.rfq_owed(), 1u) << "the Query that started COPY still owes its ReadyForQuery";
  rfq(q, "I");
  EXPECT_TRUE(q.idle());
  EXPECT_EQ(q.size(), 0u);
}

// The server rejects a row before the client's CopyDone reaches it: ErrorResponse and
// ReadyForQuery come at once; the CopyDone that follows is ignored by the server.
TEST(RequestQueue, CopyFromStdinSimpleErrorBeforeCopyDone) {
  RequestQueue q;
  send(q, "Q");
  q.on_copy_in_response();
  send(q, "d");
  q.on_error_response();
  EXPECT_FALSE(q.in_copy_in());
  rfq(q, "I");
  EXPECT_TRUE(q.idle());
  send(q, "c");
  EXPECT_TRUE(q.idle());
  EXPECT_EQ(q.size(), 0u) << "the late CopyDone gets no answer and must not linger";
  // The connection is usable as before.
  send(q, "Q");
  rfq(q, "I");
  EXPECT_TRUE(q.idle());
  EXPECT_EQ(q.size(), 0u);
}

// The failed COPY's CopyDone passes after the ErrorResponse but before the ReadyForQuery, and
// the client pipelines an extended COPY behind it: the late CopyDone must not be taken for the
// end of the second COPY (the second COPY's ignored Sync would then stay owed forever).
TEST(RequestQueue, LateCopyDoneOfFailedCopyDoesNotEndTheNextCopy) {
  RequestQueue q;
  send(q, "Q");
  q.on_copy_in_response();
  send(q, "d");
  q.on_error_response();
  send(q, "c");     // ignored by the server (it left COPY mode)
  send(q, "PBES");  // COPY FROM STDIN again, by Execute
  rfq(q, "I");      // for the first Query
  EXPECT_EQ(q.rfq_owed(), 1u);
  q.on_copy_in_response();
  send(q, "dcS");
  q.on_command_complete();
  EXPECT_EQ(q.rfq_owed(), 1u) << "the Sync read in COPY mode is dropped, the last one is owed";
  rfq(q, "I");
  EXPECT_TRUE(q.idle());
  EXPECT_EQ(q.size(), 0u);
}

TEST(RequestQueue, CopyFromStdinSimpleErrorAfterCopyDone) {
  RequestQueue q;
  send(q, "Q");
  q.on_copy_in_response();
  send(q, "dc");
  q.on_error_response();
  EXPECT_EQ(q.rfq_owed(), 1u);
  rfq(q, "I");
  EXPECT_TRUE(q.idle());
  EXPECT_EQ(q.size(), 0u);
}

TEST(RequestQueue, CopyFromStdinSimpleCopyFail) {
  RequestQueue q;
  send(q, "Q");
  q.on_copy_in_response();
  send(q, "df");
  q.on_error_response();  // "COPY from stdin failed: ..."
  rfq(q, "I");
  EXPECT_TRUE(q.idle());
  EXPECT_EQ(q.size(), 0u);
}

// Data sent before CopyInResponse arrives (the client does not wait for it).
TEST(RequestQueue, CopyFromStdinSimpleDataBeforeCopyInResponse) {
  RequestQueue q;
  send(q, "Qddc");
  q.on_copy_in_response();
  q.on_command_complete();
  rfq(q, "I");
  EXPECT_TRUE(q.idle());
  EXPECT_EQ(q.size(), 0u);
}

// One Query with two COPY statements: each has its own CopyInResponse and CopyDone.
TEST(RequestQueue, TwoCopiesInOneQuery) {
  RequestQueue q;
  send(q, "Q");
  q.on_copy_in_response();
  send(q, "dc");
  q.on_command_complete();
  q.on_copy_in_response();
  send(q, "dc");
  q.on_command_complete();
  EXPECT_EQ(q.rfq_owed(), 1u);
  rfq(q, "I");
  EXPECT_TRUE(q.idle());
  EXPECT_EQ(q.size(), 0u);
}

// libpq pipeline mode (PgBouncer's test_copy_stdin_success_extended): Parse/Bind/Describe/
// Execute/Sync; CopyInResponse; CopyData, CopyDone and the Sync libpq adds after CopyDone in
// extended mode; then pipeline_sync. The first Sync reached the server in COPY mode and is
// ignored: two ReadyForQuery come, not three.
TEST(RequestQueue, CopyFromStdinExtendedSuccess) {
  RequestQueue q;
  send(q, "PBDES");
  q.on_copy_in_response();
  send(q, "dcS");
  send(q, "S");
  EXPECT_EQ(q.rfq_owed(), 3u) << "nothing is known to be ignored before COPY ends";
  q.on_command_complete();
  EXPECT_EQ(q.rfq_owed(), 2u);
  rfq(q, "I");
  EXPECT_FALSE(q.idle());
  rfq(q, "I");
  EXPECT_TRUE(q.idle());
  EXPECT_EQ(q.size(), 0u);
}

// A client that waits for CopyInResponse before sending data, then CopyDone + one Sync: the
// first Sync is ignored, exactly one ReadyForQuery comes.
TEST(RequestQueue, CopyFromStdinExtendedOneSyncAfterCopyDone) {
  RequestQueue q;
  send(q, "PBES");
  q.on_copy_in_response();
  send(q, "ddcS");
  q.on_command_complete();
  EXPECT_EQ(q.rfq_owed(), 1u);
  rfq(q, "I");
  EXPECT_TRUE(q.idle());
  EXPECT_EQ(q.size(), 0u);
}

// Everything written at once, before the CopyInResponse arrives.
TEST(RequestQueue, CopyFromStdinExtendedAllAtOnce) {
  RequestQueue q;
  send(q, "PBESddcS");
  q.on_copy_in_response();
  q.on_command_complete();
  EXPECT_EQ(q.rfq_owed(), 1u);
  rfq(q, "I");
  EXPECT_TRUE(q.idle());
  EXPECT_EQ(q.size(), 0u);
}

// Error on a row before the pooler saw CopyDone: the server leaves COPY mode and discards
// messages until a Sync (the CopyDone included); both later Syncs are answered.
TEST(RequestQueue, CopyFromStdinExtendedErrorBeforeCopyDone) {
  RequestQueue q;
  send(q, "PBDES");
  q.on_copy_in_response();
  send(q, "d");
  q.on_error_response();
  EXPECT_FALSE(q.in_copy_in());
  EXPECT_EQ(q.rfq_owed(), 0u) << "the Sync read in COPY mode gets no answer";
  EXPECT_FALSE(q.idle()) << "the server ignores everything until the next Sync";
  send(q, "cS");
  send(q, "S");
  EXPECT_EQ(q.rfq_owed(), 2u);
  rfq(q, "I");
  rfq(q, "I");
  EXPECT_TRUE(q.idle());
  EXPECT_EQ(q.size(), 0u);
}

TEST(RequestQueue, CopyFromStdinExtendedErrorAfterCopyDone) {
  RequestQueue q;
  send(q, "PBDES");
  q.on_copy_in_response();
  send(q, "dcS");
  send(q, "S");
  q.on_error_response();
  EXPECT_EQ(q.rfq_owed(), 2u);
  rfq(q, "I");
  rfq(q, "I");
  EXPECT_TRUE(q.idle());
  EXPECT_EQ(q.size(), 0u);
}

// The COPY prepared in its own batch (Parse, Sync), then Bind/Describe/Execute/Sync of it.
TEST(RequestQueue, CopyFromStdinExtendedPreparedSuccess) {
  RequestQueue q;
  send(q, "PS");  // prepare: answered normally
  send(q, "BDES");
  rfq(q, "I");
  EXPECT_EQ(q.rfq_owed(), 1u);
  q.on_copy_in_response();
  send(q, "dcS");
  send(q, "S");
  q.on_command_complete();
  rfq(q, "I");
  rfq(q, "I");
  EXPECT_TRUE(q.idle());
  EXPECT_EQ(q.size(), 0u);
}

// Extended COPY whose Execute is followed by Flush instead of Sync (a client waiting for
// CopyInResponse without ending the batch): after CopyDone the Sync is answered.
TEST(RequestQueue, CopyFromStdinExtendedFlushThenCopyDoneAndSync) {
  // BUG: on_frontend treats a CopyDone as stray when no ReadyForQuery is owed, even though the
  // server is in COPY IN mode (an Execute started it, no Sync yet). The CopyDone is not queued,
  // so end_copy() then erases the Sync that follows it as "read in COPY mode": the queue says
  // idle while the server still owes that ReadyForQuery, and a Query pipelined behind it would
  // be taken as answered by it (the server could go back to the pool with results in flight).
  RequestQueue q;
  send(q, "PBEH");
  q.on_copy_in_response();
  send(q, "dcS");
  send(q, "Q");
  q.on_command_complete();
  EXPECT_EQ(q.rfq_owed(), 2u);
  rfq(q, "I");
  EXPECT_EQ(q.rfq_owed(), 1u) << "the pipelined Query is not answered yet";
  q.on_command_complete();
  rfq(q, "I");
  EXPECT_TRUE(q.idle());
}

// Same without the Flush: Execute, data and CopyDone written before CopyInResponse arrives.
TEST(RequestQueue, CopyFromStdinExtendedNoSyncBeforeCopyDone) {
  // BUG: same as CopyFromStdinExtendedFlushThenCopyDoneAndSync; here the pooler cannot even
  // see copy_in_ when the CopyDone passes, only that an Execute went out since the last Sync.
  RequestQueue q;
  send(q, "PBEdcS");
  q.on_copy_in_response();
  q.on_command_complete();
  EXPECT_EQ(q.rfq_owed(), 1u);
  rfq(q, "I");
  EXPECT_TRUE(q.idle());
  EXPECT_EQ(q.size(), 0u);
}

// The CopyFail of a COPY started by Execute + Flush is queued while an older batch's Sync is
// still owed; that Sync's ReadyForQuery must not discard it as a leftover marker.
TEST(RequestQueue, CopyFailQueuedBehindAnOlderSync) {
  // BUG: on_ready_for_query pops trailing copy markers whenever no ReadyForQuery is owed any
  // more, without regard to an Execute since the last Sync that has yet to start the COPY the
  // marker ends. end_copy() then finds no marker and erases the Sync after the CopyFail, which
  // the server answers (it left COPY mode at the CopyFail): the queue owes too little.
  RequestQueue q;
  send(q, "PBES");  // older batch, not answered yet
  send(q, "PBEH");  // COPY FROM STDIN by Execute, then Flush
  send(q, "f");
  rfq(q, "I");  // the older batch
  send(q, "S");
  q.on_copy_in_response();
  q.on_error_response();  // COPY from stdin failed
  EXPECT_EQ(q.rfq_owed(), 1u) << "the Sync after CopyFail is answered";
  rfq(q, "I");
  EXPECT_TRUE(q.idle());
  EXPECT_EQ(q.size(), 0u);
}

TEST(RequestQueue, CopyFromStdinExtendedCopyFail) {
  RequestQueue q;
  send(q, "PBES");
  q.on_copy_in_response();
  send(q, "dfS");
  q.on_error_response();
  EXPECT_EQ(q.rfq_owed(), 1u);
  rfq(q, "I");
  EXPECT_TRUE(q.idle());
  EXPECT_EQ(q.size(), 0u);
}

// COPY in a pipeline behind an earlier batch: only Syncs after the COPY started are ignored.
TEST(RequestQueue, CopyBehindEarlierBatch) {
  RequestQueue q;
  send(q, "PBES");  // SELECT
  send(q, "PBES");  // COPY FROM STDIN
  q.on_command_complete();
  rfq(q, "I");
  q.on_copy_in_response();
  send(q, "dcS");
  q.on_command_complete();
  EXPECT_EQ(q.rfq_owed(), 1u);
  rfq(q, "I");
  EXPECT_TRUE(q.idle());
  EXPECT_EQ(q.size(), 0u);
}

// A simple Query after an extended COPY: the Query is not mistaken for the COPY's starter.
TEST(RequestQueue, QueryAfterExtendedCopy) {
  RequestQueue q;
  send(q, "PBES");
  q.on_copy_in_response();
  send(q, "dcS");
  send(q, "Q");
  q.on_command_complete();
  EXPECT_EQ(q.rfq_owed(), 2u);
  rfq(q, "I");
  EXPECT_EQ(q.rfq_owed(), 1u);
  q.on_command_complete();
  rfq(q, "I");
  EXPECT_TRUE(q.idle());
  EXPECT_EQ(q.size(), 0u);
}

TEST(RequestQueue, StrayCopyDoneWhenNothingIsOwed) {
  RequestQueue q;
  send(q, "c");
  send(q, "f");
  EXPECT_TRUE(q.idle());
  EXPECT_EQ(q.size(), 0u);
  // It leaves nothing behind that could confuse the next COPY.
  send(q, "Q");
  q.on_copy_in_response();
  send(q, "dc");
  q.on_command_complete();
  rfq(q, "I");
  EXPECT_TRUE(q.idle());
  EXPECT_EQ(q.size(), 0u);
}

TEST(RequestQueue, ReadyForQueryWithNothingOwedIsHarmless) {
  RequestQueue q;
  rfq(q, "T");
  EXPECT_TRUE(q.idle());
  EXPECT_EQ(q.tx_status(), 'T');
  q.on_command_complete();
  EXPECT_TRUE(q.idle());
  q.on_error_response();
  EXPECT_FALSE(q.idle())
      << "an error with nothing owed: a failed Flush; the server skips to a Sync";
  EXPECT_EQ(q.size(), 0u);
}

TEST(RequestQueue, ResetForgetsEverything) {
  RequestQueue q;
  for (int i = 0; i < 40; ++i)
    send(q, "Q");  // grown onto the heap
  q.on_copy_in_response();
  send(q, "c");
  rfq(q, "E");
  q.reset();
  EXPECT_TRUE(q.idle());
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.rfq_owed(), 0u);
  EXPECT_EQ(q.tx_status(), 'I');
  EXPECT_FALSE(q.in_copy_in());
  // Still usable, including past the inline capacity again.
  for (int i = 0; i < 40; ++i)
    send(q, "S");
  EXPECT_EQ(q.rfq_owed(), 40u);
  for (int i = 0; i < 40; ++i)
    rfq(q, "I");
  EXPECT_TRUE(q.idle());
}

// A reset in the middle of a simple-Query COPY must not leave the "drop the next CopyDone"
// state behind.
TEST(RequestQueue, ResetClearsPendingCopyState) {
  RequestQueue q;
  send(q, "Q");
  q.on_copy_in_response();
  q.on_error_response();  // the client's CopyDone is still to come
  q.reset();
  send(q, "Q");
  q.on_copy_in_response();
  send(q, "c");
  EXPECT_EQ(q.size(), 2u) << "the new COPY's CopyDone is queued, not swallowed";
  q.on_command_complete();
  rfq(q, "I");
  EXPECT_TRUE(q.idle());
  EXPECT_EQ(q.size(), 0u);
}

// More than the 16 inline entries, with the ring's head moved first so growth has to unwrap.
// Syncs sent while a simple-Query COPY runs are ignored by the server; those after the
// CopyDone are answered.
TEST(RequestQueue, GrowsPastInlineEntriesInOrder) {
  RequestQueue q;
  send(q, "SSSSSSSSSS");
  rfq(q, "IIIIIII");  // head at 7, 3 left
  send(q, "FFQ");
  for (int i = 0; i < 20; ++i)
    send(q, "S");
  send(q, "cSSSSS");
  EXPECT_EQ(q.size(), 32u);
  EXPECT_EQ(q.rfq_owed(), 31u);
  rfq(q, "IIIII");
  // The Query is now first: the CopyInResponse is attributed to it.
  q.on_copy_in_response();
  q.on_command_complete();
  EXPECT_EQ(q.rfq_owed(), 6u) << "the Query and the 5 Syncs after CopyDone";
  EXPECT_EQ(q.size(), 6u);
  for (int i = 0; i < 6; ++i) {
    EXPECT_FALSE(q.idle());
    rfq(q, "I");
  }
  EXPECT_TRUE(q.idle());
  EXPECT_EQ(q.size(), 0u);
}

// Extended COPY with the ignored Syncs spread around a wrapped, grown ring.
TEST(RequestQueue, CopyEndErasesAcrossTheRingWrap) {
  RequestQueue q;
  send(q, "SSSSSSSSSSSS");
  rfq(q, "IIIIIIIIIIII");  // empty, head at 12
  send(q, "S");            // the COPY's own Sync
  q.on_copy_in_response();
  for (int i = 0; i < 20; ++i)
    send(q, "S");  // ignored: read in COPY mode
  send(q, "c");
  send(q, "SSS");
  EXPECT_EQ(q.rfq_owed(), 24u);
  q.on_command_complete();
  EXPECT_EQ(q.rfq_owed(), 3u);
  EXPECT_EQ(q.size(), 3u);
  rfq(q, "III");
  EXPECT_TRUE(q.idle());
  EXPECT_EQ(q.size(), 0u);
}

TEST(RequestQueue, CapRefusesFrontendMessagesWhenFull) {
  RequestQueue q;
  for (std::uint32_t i = 0; i < RequestQueue::kMaxEntries; ++i) {
    if (!q.on_frontend('S')) FAIL() << "refused at " << i;
  }
  EXPECT_EQ(q.size(), RequestQueue::kMaxEntries);
  EXPECT_FALSE(q.on_frontend('S'));
  EXPECT_FALSE(q.on_frontend('Q'));
  EXPECT_FALSE(q.on_frontend('F'));
  EXPECT_FALSE(q.on_frontend('P')) << "every answered message takes a place";
  EXPECT_TRUE(q.on_frontend('d')) << "unanswered messages are never refused";
  EXPECT_EQ(q.size(), RequestQueue::kMaxEntries);
  rfq(q, "I");
  EXPECT_TRUE(q.on_frontend('Q')) << "room again after one answer";
  EXPECT_FALSE(q.on_frontend('Q'));
  EXPECT_EQ(q.rfq_owed(), RequestQueue::kMaxEntries);
}

// Large queues drain in linear time (issue 11): Syncs read during COPY, the batch an error
// skips, and answers behind a copy marker are removed in one pass, never entry by entry with the
// rest shifted each time (200,000 Syncs during a COPY once stalled a worker for 15 s).
namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

TEST(RequestQueueLinear, SyncStormDuringCopyIsDroppedInOnePass) {
  for (std::uint32_t n : {1000u, 200000u}) {
    RequestQueue q;
    send(q, "Q");
    q.on_copy_in_response();
    for (std::uint32_t i = 0; i < n; ++i)
      ASSERT_TRUE(q.on_frontend('S'));
    ASSERT_TRUE(q.on_frontend('c'));
    send(q, "Q");  // a query pipelined after the COPY stays
    auto t0 = std::chrono::steady_clock::now();
    q.on_command_complete();  // the COPY's: its Syncs got no answer, nor will they
    double took = seconds_since(t0);
    EXPECT_LT(took, 0.05) << n << " Syncs";
    EXPECT_FALSE(q.in_copy_in());
    EXPECT_EQ(q.size(), 2u) << "the COPY's Query and the next one";
    EXPECT_EQ(q.rfq_owed(), 2u);
    rfq(q, "I");
    q.on_command_complete();
    rfq(q, "I");
    EXPECT_TRUE(q.idle());
  }
}

TEST(RequestQueueLinear, ErrorSkipsALongBatchInOnePass) {
  RequestQueue q;
  constexpr std::uint32_t kN = 200000;
  ASSERT_TRUE(q.on_frontend('P', RequestQueue::Action::Forward, 7));
  for (std::uint32_t i = 0; i < kN; ++i)
    ASSERT_TRUE(q.on_frontend(i % 2 == 0 ? 'B' : 'E'));
  ASSERT_TRUE(q.on_frontend('P', RequestQueue::Action::Swallow, 9));
  send(q, "S");
  send(q, "PBES");
  auto t0 = std::chrono::steady_clock::now();
  auto r = q.route('E');  // the first Parse failed: the server skips to the Sync
  EXPECT_LT(seconds_since(t0), 0.05);
  EXPECT_EQ(r.head, 'P');
  EXPECT_EQ(r.tag, 7u);
  EXPECT_EQ(q.take_skipped_parses(), std::vector<std::uint32_t>{9})
      << "the failed Parse is its caller's; the skipped one is reported";
  EXPECT_EQ(q.size(), 5u);
  rfq(q, "I");
  EXPECT_TRUE(q.on_backend('1'));
  EXPECT_TRUE(q.on_backend('2'));
  q.on_command_complete();
  rfq(q, "I");
  EXPECT_TRUE(q.idle());
}

TEST(RequestQueueLinear, AnswersBehindACopyMarkerDoNotShiftTheQueue) {
  RequestQueue q;
  send(q, "Q");
  ASSERT_TRUE(q.on_frontend('c'));  // stray CopyDone behind a running query: queued
  constexpr std::uint32_t kN = 200000;
  for (std::uint32_t i = 0; i < kN; ++i)
    ASSERT_TRUE(q.on_frontend('E'));
  send(q, "S");
  rfq(q, "I");  // the Query is answered; the marker is now ahead of the Executes
  auto t0 = std::chrono::steady_clock::now();
  for (std::uint32_t i = 0; i < kN; ++i)
    ASSERT_TRUE(q.on_backend('C'));
  EXPECT_LT(seconds_since(t0), 0.5);
  rfq(q, "I");
  EXPECT_TRUE(q.idle());
  EXPECT_EQ(q.size(), 0u);
}

TEST(RequestQueueLinear, ConsecutiveCopyMarkersKeepOne) {
  RequestQueue q;
  send(q, "Q");
  for (int i = 0; i < 1000; ++i)
    ASSERT_TRUE(q.on_frontend(i % 2 == 0 ? 'c' : 'f'));
  EXPECT_EQ(q.size(), 2u) << "only the first can end a COPY";
  q.on_copy_in_response();
  q.on_command_complete();
  EXPECT_EQ(q.size(), 1u);
  rfq(q, "I");
  EXPECT_TRUE(q.idle());
}

TEST(RequestQueue, RoomCountsDown) {
  RequestQueue q;
  EXPECT_EQ(q.room(), RequestQueue::kMaxEntries);
  send(q, "PBES");
  EXPECT_EQ(q.room(), RequestQueue::kMaxEntries - 4);
}

}  // namespace
}  // namespace sluice::proto

namespace sluice::proto {
namespace {

// pass_forward: the relay's fast path takes what belongs to a forwarded request, steps past
// what completes it, and leaves ReadyForQuery and everything unusual to the general path.
TEST(RequestQueuePassForward, ExtendedBatchStepsThroughItsAnswers) {
  RequestQueue q;
  send(q, "PBDES");
  EXPECT_FALSE(q.head_is_forwarded_query());
  EXPECT_TRUE(q.pass_forward('1'));  // ParseComplete ends the Parse
  EXPECT_TRUE(q.pass_forward('2'));  // BindComplete ends the Bind
  EXPECT_TRUE(q.pass_forward('T'));  // RowDescription answers the Describe
  EXPECT_TRUE(q.pass_forward('D'));  // DataRow belongs to the Execute
  EXPECT_TRUE(q.pass_forward('C'));  // CommandComplete ends it
  EXPECT_EQ(q.size(), 1u);           // the Sync is left
  EXPECT_FALSE(q.pass_forward('Z'));
  rfq(q, "I");
  EXPECT_TRUE(q.idle());
}

TEST(RequestQueuePassForward, SimpleQueryHeadPassesAllButReadyForQuery) {
  RequestQueue q;
  send(q, "Q");
  EXPECT_TRUE(q.head_is_forwarded_query());
  for (char t : std::string_view("TDDC")) {
    EXPECT_TRUE(q.pass_forward(t)) << t;
    EXPECT_TRUE(q.head_is_forwarded_query()) << "unchanged by " << t;
  }
  EXPECT_FALSE(q.pass_forward('Z'));
  rfq(q, "I");
  EXPECT_FALSE(q.head_is_forwarded_query());
  EXPECT_TRUE(q.idle());
}

TEST(RequestQueuePassForward, NotForSwallowedOrCopyOrErrors) {
  RequestQueue q;
  ASSERT_TRUE(q.on_frontend('Q', RequestQueue::Action::Internal));
  EXPECT_FALSE(q.head_is_forwarded_query());
  EXPECT_FALSE(q.pass_forward('D'));
  RequestQueue e;
  send(e, "Q");
  EXPECT_FALSE(e.pass_forward('E'));  // ErrorResponse: the general path
  EXPECT_FALSE(e.pass_forward('G'));  // CopyInResponse: the general path
  RequestQueue empty;
  EXPECT_FALSE(empty.head_is_forwarded_query());
  EXPECT_FALSE(empty.pass_forward('D'));
}

}  // namespace
}  // namespace sluice::proto
