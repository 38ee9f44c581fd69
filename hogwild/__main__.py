from hogwild.cli.main import main

main()
