"""hiredis from the system (Debian's libhiredis-dev), for offline builds and tests.

No sources: package_info() describes the installed library through its hiredis.pc.
Export it with the installed version, so version ranges see the truth:

    conan export packaging/conan/hiredis-system --version "$(pkg-config --modversion hiredis)"

ConanCenter users do not need this: there `hiredis/[>=0.14 <2]` resolves to ConanCenter's hiredis.
"""
from conan import ConanFile
from conan.tools.gnu import PkgConfig


class HiredisSystemConan(ConanFile):
    name = "hiredis"
    description = "hiredis as installed by the system package manager (libhiredis-dev)"
    license = "BSD-3-Clause"
    package_type = "shared-library"
    settings = "os", "arch", "compiler", "build_type"

    def package_id(self):
        self.info.clear()

    def package_info(self):
        self.cpp_info.bindirs = []
        self.cpp_info.includedirs = []
        self.cpp_info.libdirs = []
        self.cpp_info.set_property("cmake_file_name", "hiredis")
        self.cpp_info.set_property("cmake_target_name", "hiredis::hiredis")
        self.cpp_info.set_property("pkg_config_name", "hiredis")
        PkgConfig(self, "hiredis").fill_cpp_info(self.cpp_info, is_system=True)
