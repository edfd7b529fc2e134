"""Conan 2 recipe for grayroute: the headers, installed by the project's own CMake build.

    conan create packaging/conan -o "grayroute/*:with_redis=True" --build=missing

Consumers get grayroute::grayroute (and grayroute::redis with with_redis) through
CMakeDeps, and grayroute.pc (grayroute-redis.pc) through PkgConfigDeps.
"""
import os
import re

from conan import ConanFile
from conan.errors import ConanException
from conan.tools.cmake import CMake, CMakeToolchain, cmake_layout
from conan.tools.files import copy, load, rmdir

# The project's root, two levels up; the recipe is only ever exported from a checkout.
_ROOT = os.path.join("..", "..")


class GrayrouteConan(ConanFile):
    name = "grayroute"
    description = "Gray release (canary) routing for C++ gateways"
    license = "MIT"
    homepage = "https://github.com/grayroute/grayroute"
    url = "https://github.com/grayroute/grayroute"
    topics = ("canary", "gray-release", "routing", "nginx", "header-only")
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    options = {"with_redis": [True, False]}
    default_options = {"with_redis": False}
    no_copy_source = True

    def set_version(self):
        # The version lives in one place: the project() call of the top CMakeLists.txt.
        cmakelists = load(self, os.path.join(self.recipe_folder, _ROOT, "CMakeLists.txt"))
        match = re.search(r"project\(grayroute\s+VERSION\s+(\d+\.\d+\.\d+)", cmakelists)
        if not match:
            raise ConanException("no 'project(grayroute VERSION x.y.z' in CMakeLists.txt")
        self.version = match.group(1)

    def export_sources(self):
        root = os.path.join(self.recipe_folder, _ROOT)
        for pattern in ("CMakeLists.txt", "LICENSE", "cmake/*", "include/*"):
            copy(self, pattern, root, self.export_sources_folder)

    def layout(self):
        cmake_layout(self)

    def requirements(self):
        if self.options.with_redis:
            # ConanCenter's hiredis 1.x, or Debian's 0.14 behind packaging/conan/hiredis-system.
            self.requires("hiredis/[>=0.14 <2]")

    def package_id(self):
        # Headers only, the same files whatever the settings and options.
        self.info.clear()

    def generate(self):
        toolchain = CMakeToolchain(self)
        toolchain.cache_variables["GRAYROUTE_BUILD_TESTS"] = False
        toolchain.cache_variables["GRAYROUTE_BUILD_BENCHMARKS"] = False
        toolchain.cache_variables["GRAYROUTE_BUILD_EXAMPLES"] = False
        toolchain.cache_variables["GRAYROUTE_INSTALL"] = True
        # The CMake package files are replaced by CMakeDeps' below, so the install
        # does not need hiredis itself.
        toolchain.cache_variables["GRAYROUTE_REDIS"] = "OFF"
        toolchain.generate()

    def build(self):
        cmake = CMake(self)
        cmake.configure()

    def package(self):
        CMake(self).install()
        # Conan's generators describe the package (package_info), and the license goes
        # where Conan keeps licenses.
        rmdir(self, os.path.join(self.package_folder, "share"))
        copy(self, "LICENSE", self.source_folder, os.path.join(self.package_folder, "licenses"))

    def package_info(self):
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []
        self.cpp_info.set_property("cmake_file_name", "grayroute")
        # The components below carry the documented names; the aggregate gets its own.
        self.cpp_info.set_property("cmake_target_name", "grayroute::grayroute_all")
        self.cpp_info.set_property("pkg_config_name", "grayroute-all")

        core = self.cpp_info.components["core"]
        core.set_property("cmake_target_name", "grayroute::grayroute")
        core.set_property("pkg_config_name", "grayroute")
        core.bindirs = []
        core.libdirs = []

        if self.options.with_redis:
            redis = self.cpp_info.components["redis"]
            redis.set_property("cmake_target_name", "grayroute::redis")
            redis.set_property("pkg_config_name", "grayroute-redis")
            redis.requires = ["core", "hiredis::hiredis"]
            redis.bindirs = []
            redis.libdirs = []
            if self.settings.os in ("Linux", "FreeBSD"):
                redis.system_libs = ["pthread"]
