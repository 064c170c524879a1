namespace Lockstep.Conformance;

/// <summary>The one-line command that replays a failing case in the test that found it.</summary>
public static class Replay
{
    /// <summary>
    /// E.g. <c>LOCKSTEP_CONFORMANCE_SEED=5B5m1TJarRc1 ./build.sh exec -- dotnet test tests/Backends.Torch.Tests -c Release
    /// --filter "FullyQualifiedName~Lockstep.Tests.TorchVsManagedConformance.Conv2d_Random"</c>. The test project is
    /// the nearest folder above the test assembly with a .csproj; <c>./build.sh exec --</c> is added when the
    /// repository has one (Lockstep's own entry point).
    /// </summary>
    public static string Command(string seed, Type testClass, string testMethod)
    {
        ArgumentNullException.ThrowIfNull(testClass);
        string baseDir = AppContext.BaseDirectory;
        string configuration = baseDir.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
            ? " -c Release" : "";
        string? project = Up(baseDir, d => d.EnumerateFiles("*.csproj").Any());
        string? root = project is null ? null : Up(project, d => d.EnumerateFiles("build.sh").Any());
        string target = project is null ? testClass.Assembly.GetName().Name ?? "" : root is null ? project : Path.GetRelativePath(root, project);
        string runner = root is null ? "dotnet test" : "./build.sh exec -- dotnet test";
        string name = testClass.FullName ?? testClass.Name;
        return $"{ConformanceSettings.SeedVariable}={seed} {runner} {target}{configuration} --filter \"FullyQualifiedName~{name}.{testMethod}\"";
    }

    private static string? Up(string start, Func<DirectoryInfo, bool> found)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            try
            {
                if (found(dir)) return dir.FullName;
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
        return null;
    }
}
