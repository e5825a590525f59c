from kit.blend.cli import main

main()
