// swift-tools-version:5.9
// careledger's Swift bindings as a package, for `swift test` on a Mac against
// the library built by `cargo build -p careledger-uniffi --features panic-probe`
// (see bindings/README.md). Not run in CI: there is no Swift toolchain there.
// Apps do not use this package; they use an XCFramework (README, iOS steps).
import Foundation
import PackageDescription

// The directory holding libcareledger_uniffi.dylib: the workspace's debug
// build by default, or $CARELEDGER_LIB_DIR.
let packageDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path
let rustLibraryDirectory = ProcessInfo.processInfo.environment["CARELEDGER_LIB_DIR"]
    ?? "\(packageDirectory)/../../target/debug"

let package = Package(
    name: "CareLedger",
    platforms: [.macOS(.v12)],
    products: [
        .library(name: "CareLedger", targets: ["CareLedger"]),
    ],
    targets: [
        // The generated C header, exposed through the hand-written module.modulemap.
        .systemLibrary(name: "CareLedgerFFI", path: "Sources/CareLedgerFFI"),
        // The generated Swift API.
        .target(
            name: "CareLedger",
            dependencies: ["CareLedgerFFI"],
            path: "Sources/CareLedger",
            linkerSettings: [
                .unsafeFlags([
                    "-L", rustLibraryDirectory,
                    "-Xlinker", "-rpath", "-Xlinker", rustLibraryDirectory,
                ]),
            ]
        ),
        .testTarget(
            name: "CareLedgerTests",
            dependencies: ["CareLedger"],
            path: "Tests/CareLedgerTests"
        ),
    ]
)
