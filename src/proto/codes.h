// Protocol v3 constants: message type bytes, special startup codes, SQLSTATEs sluice sends.
#pragma once

#include <cstdint>

namespace sluice::proto {

inline constexpr std::uint32_t kProtocolV3 = 196608;  // 3.0
inline constexpr std::uint32_t kSslRequestCode = 80877103;
inline constexpr std::uint32_t kGssEncRequestCode = 80877104;
inline constexpr std::uint32_t kCancelRequestCode = 80877102;
inline constexpr std::uint32_t kMaxStartupLen = 10000;  // as Postgres' MAX_STARTUP_PACKET_LENGTH

namespace fe {  // frontend (client to server)
inline constexpr char kQuery = 'Q';
inline constexpr char kParse = 'P';
inline constexpr char kBind = 'B';
inline constexpr char kDescribe = 'D';
inline constexpr char kExecute = 'E';
inline constexpr char kClose = 'C';
inline constexpr char kSync = 'S';
inline constexpr char kFlush = 'H';
inline constexpr char kFunctionCall = 'F';
inline constexpr char kCopyData = 'd';
inline constexpr char kCopyDone = 'c';
inline constexpr char kCopyFail = 'f';
inline constexpr char kTerminate = 'X';
inline constexpr char kPassword = 'p';  // also SASLInitialResponse / SASLResponse
}  // namespace fe

namespace be {  // backend (server to client)
inline constexpr char kAuthentication = 'R';
inline constexpr char kBackendKeyData = 'K';
inline constexpr char kBindComplete = '2';
inline constexpr char kCloseComplete = '3';
inline constexpr char kCommandComplete = 'C';
inline constexpr char kCopyData = 'd';
inline constexpr char kCopyDone = 'c';
inline constexpr char kCopyInResponse = 'G';
inline constexpr char kCopyOutResponse = 'H';
inline constexpr char kCopyBothResponse = 'W';
inline constexpr char kDataRow = 'D';
inline constexpr char kEmptyQueryResponse = 'I';
inline constexpr char kErrorResponse = 'E';
inline constexpr char kFunctionCallResponse = 'V';
inline constexpr char kNegotiateProtocolVersion = 'v';
inline constexpr char kNoData = 'n';
inline constexpr char kNoticeResponse = 'N';
inline constexpr char kNotificationResponse = 'A';
inline constexpr char kParameterDescription = 't';
inline constexpr char kParameterStatus = 'S';
inline constexpr char kParseComplete = '1';
inline constexpr char kPortalSuspended = 's';
inline constexpr char kReadyForQuery = 'Z';
inline constexpr char kRowDescription = 'T';
}  // namespace be

// Authentication request codes (body of 'R').
namespace auth {
inline constexpr std::uint32_t kOk = 0;
inline constexpr std::uint32_t kCleartext = 3;
inline constexpr std::uint32_t kMd5 = 5;
inline constexpr std::uint32_t kSasl = 10;
inline constexpr std::uint32_t kSaslContinue = 11;
inline constexpr std::uint32_t kSaslFinal = 12;
}  // namespace auth

namespace sqlstate {
inline constexpr const char* kProtocolViolation = "08P01";
inline constexpr const char* kConnectionFailure = "08006";
inline constexpr const char* kConnectionException = "08000";
inline constexpr const char* kInvalidPassword = "28P01";
inline constexpr const char* kInvalidAuthorization = "28000";
inline constexpr const char* kInvalidCatalogName = "3D000";
inline constexpr const char* kTooManyConnections = "53300";
inline constexpr const char* kInsufficientResources = "53000";
inline constexpr const char* kAdminShutdown = "57P01";
inline constexpr const char* kQueryCanceled = "57014";
inline constexpr const char* kFeatureNotSupported = "0A000";
inline constexpr const char* kSyntaxError = "42601";
inline constexpr const char* kInternalError = "XX000";
inline constexpr const char* kProgramLimitExceeded = "54000";
inline constexpr const char* kIdleSessionTimeout = "57P05";
inline constexpr const char* kIdleInTransactionTimeout = "25P03";
inline constexpr const char* kInvalidParameterValue = "22023";
inline constexpr const char* kCantChangeRuntimeParam = "55P02";
inline constexpr const char* kObjectNotInPrerequisiteState = "55000";
}  // namespace sqlstate

}  // namespace sluice::proto
