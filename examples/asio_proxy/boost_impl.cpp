// The one translation unit holding Asio's non-template code
// (BOOST_ASIO_SEPARATE_COMPILATION): compiled once instead of in every file.
#include <boost/asio/impl/src.hpp>
